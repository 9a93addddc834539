"""Every path the project uses, derived once (Cookiecutter Data Science).

Source (notebooks) lives beside this package. Generated things (data, cache, results,
figures) live under the *work root*: the project root by default, or ``$FER_HOME`` when set, so
a test, a CI job or a second study can point the whole pipeline somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").exists() else Path.cwd()
#: The clone's notebooks/, or (an installed wheel) the copies that travel inside the package.
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks" if (PROJECT_DIR / "notebooks").is_dir() else PACKAGE_DIR / "notebooks"

ROOT = Path(os.environ["FER_HOME"]).expanduser().resolve() if os.environ.get("FER_HOME") else PROJECT_DIR
DATA_DIR = ROOT / "data"  # generated data sets and the decode cache (git-ignored contents)
CACHE_DIR = Path(os.environ.get("FER_CACHE", DATA_DIR / "cache"))
SYNTHETIC_DIR = DATA_DIR / "synthetic"  # the embedded default data set, made by `fer synth`
RESULTS_DIR = ROOT / "results"
RUNS_DIR = RESULTS_DIR / "runs"
TABLES_DIR = RESULTS_DIR / "tables"  # one manifest per table: which runs and epochs made it
EXECUTED_DIR = RESULTS_DIR / "executed"
FIGURES_DIR = ROOT / "figures"
#: Real RAF-DB and UTKFace, when present: ``$FER_DATA``, else ``../shared/data`` beside the project
#: (the sorting step's UTKFace sample and the real-data tests look there).
SHARED_DATA = Path(os.environ["FER_DATA"]).expanduser().resolve() if os.environ.get("FER_DATA") else PROJECT_DIR.parent / "shared" / "data"


def synthetic_dir(profile: str) -> Path:
    """The synthetic set a profile uses by default: data/synthetic (demo) or data/synthetic-<p>."""
    return SYNTHETIC_DIR if profile in ("demo", "full") else DATA_DIR / f"synthetic-{profile}"
