"""Every path the project uses, derived once from the project root (Cookiecutter Data Science).

The root is the folder holding ``pyproject.toml`` next to this package. ``FER_HOME`` overrides
it, so an installed package or a test can point the whole pipeline somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    env = os.environ.get("FER_HOME")
    if env:
        return Path(env).expanduser().resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd()


ROOT = project_root()
DATA_DIR = ROOT / "data"  # generated data sets and the decode cache (git-ignored contents)
CACHE_DIR = Path(os.environ.get("FER_CACHE", DATA_DIR / "cache"))
SYNTHETIC_DIR = DATA_DIR / "synthetic"  # the embedded default data set, made by `fer synth`
RESULTS_DIR = ROOT / "results"
RUNS_DIR = RESULTS_DIR / "runs"
EXECUTED_DIR = RESULTS_DIR / "executed"
FIGURES_DIR = ROOT / "figures"
NOTEBOOKS_DIR = ROOT / "notebooks"
SHARED_DATA = ROOT.parent / "shared" / "data"  # real RAF-DB and UTKFace, when present
