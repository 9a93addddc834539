"""The synthetic data set: deterministic, readable by the loader, RAF-DB's class shares."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_utils.data import datasets, info

from fer_utils.data import synthetic
from fer_utils.data.datasets import CLASS_NAMES
from fer_utils.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(n_train=28, n_test=14, n_unlabelled=12, seed=3)


def tree_hash(root: Path) -> str:
    """Hash of every file's relative path and bytes."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "synthetic"
    synthetic.generate(out, progress=False, **TINY)
    return out


def test_generation_is_deterministic(tiny, tmp_path):
    again = tmp_path / "again"
    synthetic.generate(again, progress=False, **TINY)
    assert tree_hash(again) == tree_hash(tiny)
    other = tmp_path / "other"
    synthetic.generate(other, progress=False, **{**TINY, "seed": 4})
    assert tree_hash(other) != tree_hash(tiny)


def test_loader_reads_it_back(tiny):
    meta = info.info(tiny)
    assert meta["layout"] == "report" and meta["synthetic"] is True
    assert meta["totals"] == {"train": 28, "test": 14}
    for split, n in (("train", 28), ("test", 14)):
        assert meta["counts"][split] == synthetic.class_counts(n)
        assert all(k >= 2 for k in meta["counts"][split].values())
    assert meta["image_sizes"] == {"100x100": 42}
    assert "NOT RAF-DB" in (tiny / datasets.SYNTHETIC_MARKER).read_text()


@pytest.mark.parametrize("n", [2000, 500, 300, 12271])
def test_class_shares_follow_raf_db(n):
    labels = synthetic.plan_labels(n, seed=0, split="train")
    shares = np.bincount(labels, minlength=len(CLASS_NAMES)) / n
    assert len(labels) == n
    np.testing.assert_allclose(shares, synthetic.CLASS_SHARES, atol=0.02)


def test_tiny_sets_keep_every_class():
    for n in range(7, 40):
        counts = synthetic.class_counts(n)
        assert sum(counts.values()) == n and min(counts.values()) >= min(2, n // 7)


def test_unlabelled_names_hide_the_label(tiny):
    files = sorted((tiny / "unlabelled").iterdir())
    assert len(files) == 12
    for f in files:
        assert not any(c.lower() in f.as_posix().lower() for c in CLASS_NAMES)
        age, gender, race, rest = f.name.split("_", 3)
        assert 1 <= int(age) <= 90 and gender in "01" and race in "01234"
        assert rest.startswith("synth") and f.name.endswith(".jpg.chip.jpg")
    with open(tiny / synthetic.TRUTH_CSV) as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["file"] for r in rows) == [f.name for f in files]
    assert all(r["label"] in CLASS_NAMES for r in rows)


def test_refuses_foreign_folder_and_reuses_identical_set(tiny, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="refusing to overwrite") as err:
        synthetic.generate(foreign, progress=False, **TINY)
    assert str(foreign) in str(err.value)
    assert (foreign / "thesis.tex").read_text() == "precious"
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    assert synthetic.generate(copy, progress=False, **TINY)["reused"] is True
    # Other parameters replace the old synthetic set whole, leaving no temporary folders.
    summary = synthetic.generate(copy, progress=False, **{**TINY, "n_test": 7})
    assert summary["reused"] is False and info.info(copy)["totals"]["test"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "mine"]
    assert json.loads((copy / synthetic.MANIFEST).read_text())["params"]["n_test"] == 7


def test_regenerating_never_deletes_the_users_own_files(tiny, tmp_path):
    """Another seed over a synthetic set that also holds a notes file and a results folder:
    refused, naming the foreign file, and nothing in the folder changes."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    (copy / "notes.txt").write_text("my notes")
    (copy / "results").mkdir()
    (copy / "results" / "run.csv").write_text("1,2\n")
    before = tree_hash(copy)
    assert synthetic.foreign_files(copy) == ["notes.txt", "results/"]
    with pytest.raises(DataError, match=r"notes.txt: not made by the generator \(2 such"):
        synthetic.generate(copy, progress=False, **{**TINY, "seed": 9})
    assert tree_hash(copy) == before
    assert synthetic.generate(copy, progress=False, **TINY)["reused"] is True  # same parameters: kept
    assert synthetic.foreign_files(tiny) == []


def test_full_disk_leaves_the_old_set_whole(tiny, tmp_path, monkeypatch):
    import errno

    from fer_utils.errors import FerError

    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    before = tree_hash(copy)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(synthetic, "_write_set", full)
    with pytest.raises(FerError, match=r"copy: cannot write \(No space left on device\); nothing was left half-written"):
        synthetic.generate(copy, progress=False, **{**TINY, "seed": 5})
    assert tree_hash(copy) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


def test_contact_sheet(tiny, tmp_path):
    from fer_utils.study.figures import synthetic_contact_sheet

    png = synthetic_contact_sheet(tiny, tmp_path / "sheet.png", per_class=3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_contact_sheet_title_names_the_set_not_its_path(tiny):
    # The committed figure must not show a temporary folder.
    title = synthetic.sheet_title(tiny)
    assert str(tiny) not in title and "tmp" not in title
    assert "seed 3" in title and "28 train" in title
    assert f"generator version {synthetic.GENERATOR_VERSION}" in title


def test_manifest_stamps_the_generator_version(tiny):
    # Bumping GENERATOR_VERSION must make a rerun regenerate an older set.
    params = json.loads((tiny / synthetic.MANIFEST).read_text())["params"]
    assert params["generator_version"] == synthetic.GENERATOR_VERSION >= 2
    assert "generator version" in (tiny / datasets.SYNTHETIC_MARKER).read_text()


@pytest.mark.slow
def test_data_notebook_runs(tiny, tmp_path):
    pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "00_data.ipynb"), str(out),
           "-p", "data", str(tiny), "-p", "image_size", "32", "-p", "n_samples", "2",
           "--cwd", str(ROOT / "notebooks"), "-k", "python3"]
    # The decode cache goes to tmp_path, not the project's data/cache.
    env = {**os.environ, "FER_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    text = out.read_text()
    assert "SYNTHETIC" in text and "grayscale" in text
