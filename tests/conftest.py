"""Shared fixtures: tiny data sets built in temporary folders (never real faces)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from fer_utils.data.datasets import CLASS_NAMES

ROOT = Path(__file__).resolve().parents[1]
#: The real data sets: $FER_DATA (raf-basic.zip, utkface-sample.zip, ...) or ../shared/data.
SHARED_DATA = Path(os.environ["FER_DATA"]).expanduser() if os.environ.get("FER_DATA") else ROOT.parent / "shared" / "data"
RAF_ZIP = SHARED_DATA / "raf-basic.zip"
UTK_ZIP = SHARED_DATA / "utkface-sample.zip"

needs_raf = pytest.mark.skipif(not RAF_ZIP.exists(), reason=f"{RAF_ZIP} is absent (set FER_DATA to the folder that holds raf-basic.zip)")
needs_utk = pytest.mark.skipif(not UTK_ZIP.exists(), reason=f"{UTK_ZIP} is absent (set FER_DATA to the folder that holds utkface-sample.zip)")


def tiny_image(label: int, rng, size=24) -> "np.ndarray":
    """A learnable toy image: a class-coloured square on noise."""
    img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    colour = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53 + 100) % 256], dtype=np.uint8)
    s = size // 4 + label % 3
    img[s : size - s, s : size - s] = colour
    return img


def write_report_layout(root: Path, per_class=(4, 2), seed=0, fmt="png") -> Path:
    """class/{train,test}/<Class>/ with ``per_class`` images per split."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "test"), per_class):
        for k, name in enumerate(CLASS_NAMES):
            d = root / "class" / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(tiny_image(k, rng)).save(d / f"{split}_{name}_{i:03d}.{fmt}")
    return root


def write_official_layout(root: Path, per_class=(3, 2), seed=0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img_dir = root / "basic" / "Image" / "aligned"
    lab_dir = root / "basic" / "EmoLabel"
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    lines = []
    for split, n in zip(("train", "test"), per_class):
        idx = 0
        for k in range(len(CLASS_NAMES)):
            for _ in range(n):
                idx += 1
                stem = f"{split}_{idx:05d}" if split == "train" else f"{split}_{idx:04d}"
                Image.fromarray(tiny_image(k, rng)).save(img_dir / f"{stem}_aligned.jpg", quality=95)
                lines.append(f"{stem}.jpg {k + 1}")
    (lab_dir / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def zip_tree(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(src).as_posix())
    return dest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own cache and results folders (never the user's)."""
    from fer_utils import paths

    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "_cache")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "_runs")
    # and every other results folder: no test writes into the project's results/ or figures/
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "_results")
    monkeypatch.setattr(paths, "TABLES_DIR", tmp_path / "_results" / "tables")
    monkeypatch.setattr(paths, "EXECUTED_DIR", tmp_path / "_results" / "executed")
    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path / "_figures")
    yield


@pytest.fixture
def report_tree(tmp_path):
    return write_report_layout(tmp_path / "ds")


@pytest.fixture
def official_tree(tmp_path):
    return write_official_layout(tmp_path / "raf")


def run_fer(*args, home: Path, timeout=1200, env=None):
    """`fer ARGS` in a subprocess whose work root is ``home`` (paths are read at import);
    ``env``: more environment variables."""
    import subprocess
    import sys

    env = dict(os.environ, FER_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    env.pop("FER_CACHE", None)
    return subprocess.run([sys.executable, "-m", "fer_utils.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """The whole pipeline once at the smoke profile, as `make report` runs it: synthetic data,
    notebooks 00-05 through papermill, then the report (HTML, and PDF where Chromium exists).
    Shared by the experiment, organize and report tests. Returns (home, stdout)."""
    home = tmp_path_factory.mktemp("smoke_home")
    out = run_fer("run", "--profile", "smoke", home=home)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return home, out.stdout
