"""An installed package works without the clone: the wheel is built from the checkout, installed
(not editable) into a fresh virtual environment, and its ``fer`` runs from a folder far from the
clone: ``predict``, ``evaluate`` and ``organize`` with the shipped model, and ``fer run --profile
smoke`` from the notebooks that travel inside the wheel (two of them and the report, to keep
``make test`` short: the whole smoke study passes installed the same way).

The fresh environment gets its dependencies (TensorFlow and the rest, gigabytes) from the test's
own environment through a ``.pth`` line, and their data files (nbconvert's templates) through
``JUPYTER_PATH``: what is tested is the wheel's content, not pip's resolver. Building needs no network (``--no-build-isolation``: setuptools comes with the dev extras).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_report_layout
from fer_utils.apply import shipped

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shipped.available(), reason="no model ships in this checkout (fer_utils/weights/)")]


def _tracked_copy(dest: Path) -> Path:
    """The checkout's files as a fresh clone has them (git's tracked files), plus the shipped model."""
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True)
    for rel in out.stdout.decode().split("\0"):
        if not rel:
            continue
        src = ROOT / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        elif src.is_file():
            shutil.copy2(src, target)
    weights = dest / "fer_utils" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    for f in (shipped.WEIGHTS, shipped.CARD, shipped.CARD_MD):
        shutil.copy2(shipped.SHIPPED_DIR / f, weights / f)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    src = _tracked_copy(base / "src")
    dist = base / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                            str(dist), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("fer_utils-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("fer_utils/weights/weights.npz", "fer_utils/weights/card.json", "fer_utils/weights/MODEL_CARD.md",
                   "fer_utils/notebooks/00_data.ipynb", "fer_utils/notebooks/06_report.ipynb"):
        assert needed in names, needed
    env_dir = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    py = env_dir / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    deps = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
            if Path(p).is_dir()]
    (purelib / "zz_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    inst = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-3000:]
    return env_dir, base


def fer(env_dir: Path, *args, cwd: Path, home: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FER_", "VIRTUAL_ENV"))}
    env.update(FER_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", PATH=f"{env_dir / 'bin'}:{env.get('PATH', '')}",
               # the dependencies' data files (nbconvert's templates) are where their real install put them
               JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"))
    return subprocess.run([str(env_dir / "bin" / "fer"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)


def test_the_installed_package_predicts_evaluates_organizes_and_runs_the_smoke_study(installed, tmp_path):
    env_dir, base = installed
    far = tmp_path / "elsewhere"
    far.mkdir()
    home = tmp_path / "home"
    where = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import fer_utils; print(fer_utils.__file__)"],
                           cwd=far, capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")})
    assert where.returncode == 0 and str(env_dir) in where.stdout and str(ROOT) not in where.stdout, where.stdout + where.stderr

    face = far / "face.png"
    Image.fromarray(np.full((100, 100, 3), 128, np.uint8)).save(face)
    out = fer(env_dir, "predict", str(face), cwd=far, home=home)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith(f"{face}\tface 1/1\tbox x=0 y=0 w=100 h=100 (crop)") and "shipped model" in out.stderr

    labelled = write_report_layout(far / "labelled", per_class=(2, 2))
    out = fer(env_dir, "evaluate", "shipped", str(labelled), cwd=far, home=home)
    assert out.returncode == 0 and "accuracy" in out.stdout.lower(), out.stderr[-3000:]

    out = fer(env_dir, "organize", str(labelled / "class" / "test"), str(far / "sorted"), cwd=far, home=home)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Sorted by the shipped model" in out.stdout and (far / "sorted" / "predictions.csv").exists()

    # two notebooks (Table 1's trains) and the report (the whole smoke study passes the same way)
    out = fer(env_dir, "run", "--profile", "smoke", "--notebooks", "00_data,01_learning_rate,06_report", cwd=far, home=home)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    executed = sorted(p.name for p in (home / "results" / "executed").glob("*.ipynb"))
    assert executed == ["00_data.ipynb", "01_learning_rate.ipynb", "06_report.ipynb"]
    assert (home / "results" / "report.html").exists()
    assert not (far / "results").exists()  # everything under FER_HOME
