"""organize: every face sorted exactly once, nothing lost or overwritten, resumable, repeatable.

All images are drawn here with PIL (never real faces); the model is an untrained depth-2 CNN
at 32x32, so predictions are arbitrary but deterministic, which is all these tests need.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_utils.apply import organize as org
from fer_utils.errors import ConfigError, FerError
from fer_utils.study.figures import organize_contact_sheets
from fer_utils.apply.organize import organize
from fer_utils.data.sources import Source


ROOT = Path(__file__).resolve().parents[1]
META = {org.PREDICTIONS_CSV, org.ERRORS_CSV, org.JOURNAL, org.STATE}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from fer_utils.models.report_cnn import build_model
    from fer_utils.models.registry import save_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    save_model(build_model(depth=2, input_size=32, seed=1), path)
    return path


@pytest.fixture(scope="module")
def model(model_path):
    from fer_utils.models.registry import load_model

    return load_model(model_path, compile=False)[0]


def _img_bytes(seed: int, fmt: str = "PNG", size=(40, 36)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    arr[size[1] // 4 : -size[1] // 4, size[0] // 4 : -size[0] // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_faces(root: Path, n: int = 12) -> list[str]:
    """A tree with subfolders, a same-name pair, PNG and JPEG, UTKFace-style names, and
    files that are not inputs (a text file, a hidden file). Returns the image rel paths."""
    rels = []
    for i in range(n):
        fmt, ext = (("JPEG", "jpg") if i % 2 else ("PNG", "png"))
        rel = f"{'ab'[i % 2]}/{(i * 7) % 90}_{i % 2}_{i % 5}_2017011{i:04d}.{ext}.chip.{ext}"
        _write(root / rel, _img_bytes(i, fmt))
        rels.append(rel)
    for k, sub in enumerate(("a", "b/deeper")):  # same name, different bytes, different folders
        _write(root / sub / "same.png", _img_bytes(100 + k))
        rels.append(f"{sub}/same.png")
    (root / "notes.txt").write_text("not an image\n")
    _write(root / ".hidden.png", _img_bytes(999))
    return sorted(rels)


def tree_hash(root: Path, skip=()) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in skip:
            h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def image_files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name not in META)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------


def test_every_image_sorted_exactly_once_and_same_names_survive(tmp_path, model):
    rels = make_faces(tmp_path / "in")
    before = tree_hash(tmp_path / "in")
    summary = organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=5)
    out = tmp_path / "out"

    rows = read_csv(out / "predictions.csv")
    assert [r["source"] for r in rows] == rels
    assert image_files(out) == sorted(r["destination"] for r in rows)  # one copy per input, nothing else
    for r in rows:
        assert r["destination"] == f"{r['predicted']}/{r['source']}"
        assert (out / r["destination"]).read_bytes() == (tmp_path / "in" / r["source"]).read_bytes()
        probs = [float(r[f"p_{c}"]) for c in model.class_names]
        assert abs(sum(probs) - 1) < 1e-4 and float(r["confidence"]) == pytest.approx(max(probs), abs=1e-6)
    assert {"a/same.png", "b/deeper/same.png"} <= {r["source"] for r in rows}
    # the text file is not an input image: one errors.csv row says so (the README promises it)
    assert [e["source"] for e in read_csv(out / "errors.csv")] == ["notes.txt"]
    assert "not an image file (suffix .txt)" in read_csv(out / "errors.csv")[0]["reason"]
    assert summary.sorted == len(rels) and summary.failed == 0 and summary.skipped_non_images == 1
    assert sum(summary.per_class.values()) == len(rels)
    assert str(summary).startswith(f"{len(rels)} sorted, 0 failed, 0 uncertain")
    assert tree_hash(tmp_path / "in") == before  # input untouched


def test_second_run_changes_nothing(tmp_path, model):
    make_faces(tmp_path / "in")
    organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=4)
    first = tree_hash(tmp_path / "out")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")}
    summary = organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=4)
    assert tree_hash(tmp_path / "out") == first
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")} == stamps  # not even touched
    assert summary.resumed == summary.sorted


def test_rerun_without_journal_rebuilds_same_csv(tmp_path, model):
    make_faces(tmp_path / "in")
    organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=4)
    csv_before = (tmp_path / "out" / "predictions.csv").read_bytes()
    files_before = tree_hash(tmp_path / "out", skip=META)
    (tmp_path / "out" / org.JOURNAL).unlink()
    organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=4)
    assert (tmp_path / "out" / "predictions.csv").read_bytes() == csv_before
    assert tree_hash(tmp_path / "out", skip=META) == files_before


def test_corrupt_files_go_to_errors_csv(tmp_path, model, monkeypatch):
    rels = make_faces(tmp_path / "in", n=6)
    jpeg = _img_bytes(7, "JPEG", size=(64, 64))
    bad = {
        "bad/empty.jpg": b"",
        "bad/truncated.jpg": jpeg[: len(jpeg) // 2],
        "bad/text.jpg": b"this is a text file, not a JPEG\n",
        "bad/random.png": np.random.default_rng(3).integers(0, 256, 500, dtype=np.uint8).tobytes(),
        "bad/unreadable.png": _img_bytes(8),
    }
    for rel, data in bad.items():
        _write(tmp_path / "in" / rel, data)
    real_read = Source.read

    def read(self, rel):  # a permission error without needing a non-root user
        if rel == "bad/unreadable.png":
            raise PermissionError(13, "Permission denied")
        return real_read(self, rel)

    monkeypatch.setattr(Source, "read", read)
    summary = organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=3)

    errors = [e for e in read_csv(tmp_path / "out" / "errors.csv") if e["source"] != "notes.txt"]
    assert sorted(e["source"] for e in errors) == sorted(bad)
    reasons = {e["source"]: e["reason"] for e in errors}
    assert "empty" in reasons["bad/empty.jpg"] and "Permission denied" in reasons["bad/unreadable.png"]
    assert all(reasons.values())
    assert not any("0x" in r or "on_error" in r for r in reasons.values())  # same text every run, no Python hints
    rows = read_csv(tmp_path / "out" / "predictions.csv")
    assert sorted(r["source"] for r in rows) == rels  # the good ones all sorted
    # every input exactly once: sorted or failed
    assert sorted([r["source"] for r in rows] + [e["source"] for e in errors]) == sorted(rels + list(bad))
    assert summary.failed == len(bad) and summary.sorted == len(rels)
    assert not any("bad/" in f for f in image_files(tmp_path / "out"))


def test_zip_input_matches_folder_input(tmp_path, model):
    make_faces(tmp_path / "in")
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as zf:
        for p in sorted((tmp_path / "in").rglob("*")):
            if p.is_file():
                zf.write(p, "faces/" + p.relative_to(tmp_path / "in").as_posix())
    zip_before = (tmp_path / "faces.zip").read_bytes()
    organize(tmp_path / "in", tmp_path / "out_dir", model, progress=False, batch_size=4)
    organize(tmp_path / "faces.zip", tmp_path / "out_zip", model, progress=False, batch_size=4)
    a = read_csv(tmp_path / "out_dir" / "predictions.csv")
    b = read_csv(tmp_path / "out_zip" / "predictions.csv")
    assert [r["source"] for r in b] == ["faces/" + r["source"] for r in a]
    assert [(r["predicted"], r["confidence"]) for r in b] == [(r["predicted"], r["confidence"]) for r in a]
    for r in b:
        assert (tmp_path / "out_zip" / r["destination"]).exists()
    assert (tmp_path / "faces.zip").read_bytes() == zip_before


def test_interrupted_run_resumes_without_duplicates(tmp_path, model_path):
    from fer_utils.models.registry import load_model

    rels = make_faces(tmp_path / "in", n=14)
    m, _ = load_model(model_path, compile=False)
    organize(tmp_path / "in", tmp_path / "ref", m, progress=False, batch_size=4)

    real = m.predict_on_batch
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] == 3:  # Ctrl-C in the middle of the run
            raise KeyboardInterrupt
        return real(x)

    m.predict_on_batch = flaky
    with pytest.raises(KeyboardInterrupt):
        organize(tmp_path / "in", tmp_path / "out", m, progress=False, batch_size=4)
    journal = read_csv(tmp_path / "out" / org.JOURNAL)
    assert len(journal) == 8  # two batches journalled, the rest not
    assert not (tmp_path / "out" / "predictions.csv").exists()

    # A torn last line (the process died while writing it) is ignored, and so is a temporary
    # copy a killed process left behind.
    with open(tmp_path / "out" / org.JOURNAL, "a") as f:
        f.write("123:456,a/half-writ")
    stale = _write(tmp_path / "out" / "Neutral" / "a" / ".x.png.4242.tmp", b"half")

    m.predict_on_batch = real
    summary = organize(tmp_path / "in", tmp_path / "out", m, progress=False, batch_size=4)
    assert summary.resumed == 8 and summary.sorted == len(rels)
    assert (tmp_path / "out" / "predictions.csv").read_bytes() == (tmp_path / "ref" / "predictions.csv").read_bytes()
    assert tree_hash(tmp_path / "out", skip={org.JOURNAL}) == tree_hash(tmp_path / "ref", skip={org.JOURNAL})
    assert not stale.exists()


def test_copy_done_but_not_journalled_is_not_duplicated(tmp_path, model):
    make_faces(tmp_path / "in")
    organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=4)
    ref = tree_hash(tmp_path / "out", skip={org.JOURNAL})
    journal = tmp_path / "out" / org.JOURNAL
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[: len(lines) // 2]))  # died after copying, before journalling
    organize(tmp_path / "in", tmp_path / "out", model, progress=False, batch_size=4)
    assert tree_hash(tmp_path / "out", skip={org.JOURNAL}) == ref


def test_never_overwrites_a_different_file(tmp_path, model):
    make_faces(tmp_path / "in", n=4)
    organize(tmp_path / "in", tmp_path / "probe", model, progress=False)
    row = read_csv(tmp_path / "probe" / "predictions.csv")[0]
    squatter = _write(tmp_path / "out" / row["destination"], b"someone else's file")
    summary = organize(tmp_path / "in", tmp_path / "out", model, progress=False)
    assert squatter.read_bytes() == b"someone else's file"
    moved = {r["source"]: r["destination"] for r in read_csv(tmp_path / "out" / "predictions.csv")}[row["source"]]
    stem, ext = row["destination"].rsplit(".", 1)
    assert moved == f"{stem} (2).{ext}"
    assert (tmp_path / "out" / moved).read_bytes() == (tmp_path / "in" / row["source"]).read_bytes()
    assert summary.renamed == 1


def test_min_confidence_sends_faces_to_uncertain(tmp_path, model):
    rels = make_faces(tmp_path / "in", n=4)
    summary = organize(tmp_path / "in", tmp_path / "out", model, progress=False, min_confidence=0.999)
    rows = read_csv(tmp_path / "out" / "predictions.csv")
    assert all(r["destination"] == f"_uncertain/{r['predicted']}/{r['source']}" for r in rows)
    assert summary.uncertain == len(rels) == summary.sorted
    # Changing a setting on an organized folder is refused, not silently mixed.
    with pytest.raises(FerError, match="min_confidence"):
        organize(tmp_path / "in", tmp_path / "out", model, progress=False, min_confidence=0.2)


def test_bad_arguments(tmp_path, model):
    make_faces(tmp_path / "in", n=2)
    with pytest.raises(ConfigError):
        organize(tmp_path / "in", tmp_path / "in", model, progress=False)
    with pytest.raises(ConfigError):
        organize(tmp_path / "in", tmp_path / "o", model, progress=False, min_confidence=2)
    with pytest.raises(FerError, match="no such"):
        organize(tmp_path / "nope", tmp_path / "o", model, progress=False)
    with pytest.raises(ConfigError, match="outputs"):
        organize(tmp_path / "in", tmp_path / "o", model, ["a", "b"], progress=False)


def test_output_inside_input_is_not_walked(tmp_path, model):
    rels = make_faces(tmp_path / "in", n=4)
    organize(tmp_path / "in", tmp_path / "in" / "sorted", model, progress=False)
    organize(tmp_path / "in", tmp_path / "in" / "sorted", model, progress=False)
    assert [r["source"] for r in read_csv(tmp_path / "in" / "sorted" / "predictions.csv")] == rels


def test_model_path_and_faces_modes(tmp_path, model_path, model):
    make_faces(tmp_path / "in", n=4)
    organize(tmp_path / "in", tmp_path / "a", model_path, progress=False)
    organize(tmp_path / "in", tmp_path / "b", model, progress=False)
    assert (tmp_path / "a" / "predictions.csv").read_bytes() == (tmp_path / "b" / "predictions.csv").read_bytes()
    # The faces are small crops: "auto" takes them whole, so it equals "whole" byte for byte.
    organize(tmp_path / "in", tmp_path / "c", model, progress=False, faces="whole")
    assert (tmp_path / "c" / "predictions.csv").read_bytes() == (tmp_path / "b" / "predictions.csv").read_bytes()
    rows = read_csv(tmp_path / "b" / "predictions.csv")
    assert {r["face"] for r in rows} == {"0"} and all((r["x"], r["y"]) == ("0", "0") for r in rows)


def test_missing_detector_says_how_to_install(tmp_path, model, monkeypatch):
    make_faces(tmp_path / "in", n=2)
    monkeypatch.setitem(sys.modules, "mtcnn", None)
    with pytest.raises(FerError, match="pip install mtcnn"):
        organize(tmp_path / "in", tmp_path / "out", model, progress=False, faces="detect")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_contact_sheets_go_under_output(tmp_path, model):
    make_faces(tmp_path / "in", n=12)
    out = tmp_path / "out"
    summary = organize(tmp_path / "in", out, model, progress=False)
    paths = organize_contact_sheets(out, per_sheet=4)
    assert sorted(p.name for p in paths) == sorted(f"{c}.png" for c, n in summary.per_class.items() if n)
    assert all(p.parent == out / org.SHEETS_DIR for p in paths)
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 100
    # a second run changes no byte and no modification time
    first = tree_hash(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    organize(tmp_path / "in", out, model, progress=False)
    organize_contact_sheets(out, per_sheet=4)
    assert tree_hash(out) == first and {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps


def test_stale_sheets_removed_only_when_ours(tmp_path, model):
    import json

    make_faces(tmp_path / "in", n=6)
    out = tmp_path / "out"
    organize(tmp_path / "in", out, model, progress=False)
    predicted = {r["predicted"] for r in read_csv(out / "predictions.csv")}
    empty = [c for c in model.class_names if c not in predicted]
    assert len(empty) >= 2  # 6 faces, an untrained model: most classes stay empty
    ours, theirs = (out / org.SHEETS_DIR / f"{c}.png" for c in empty[:2])
    _write(ours, b"a sheet an earlier run wrote")
    _write(theirs, b"a user's own file")
    record = out / ".organize-sheets.json"
    record.write_text(json.dumps({f"{org.SHEETS_DIR}/{ours.name}": hashlib.sha256(ours.read_bytes()).hexdigest()}))
    organize_contact_sheets(out, per_sheet=2)
    assert not ours.exists()  # ours, of a class now empty: gone
    assert theirs.read_bytes() == b"a user's own file"  # never recorded: kept
    assert sorted(json.loads(record.read_text())) == sorted(f"{org.SHEETS_DIR}/{c}.png" for c in predicted)


@pytest.mark.slow
def test_notebook_05_runs(tmp_path, model_path):
    pytest.importorskip("papermill")
    faces = tmp_path / "synthetic" / "unlabelled"
    rels = make_faces(faces, n=10)
    with open(tmp_path / "synthetic" / "unlabelled_truth.csv", "w") as f:
        f.write("file,label,age\n" + "".join(f"{Path(r).name},Happiness,{i}\n" for i, r in enumerate(rels)))
    out_nb = tmp_path / "05_out.ipynb"
    env = dict(os.environ, FER_HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    cmd = [
        sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "05_organize.ipynb"), str(out_nb),
        "-p", "faces", str(faces), "-p", "model_path", str(model_path),
        "-p", "output", str(tmp_path / "organized"), "-p", "min_confidence", "0.2",
        "--cwd", str(ROOT / "notebooks"), "--no-progress-bar",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out_nb.read_text()
    assert "sorted" in text and "the report said" in text.lower()
    assert "accuracy against" in text.lower()
    rows = read_csv(tmp_path / "organized" / "predictions.csv")
    assert sorted(r["source"] for r in rows) == rels
    assert list((tmp_path / "organized" / org.SHEETS_DIR).glob("*.png"))
    assert not (tmp_path / "home" / "figures").exists()  # nothing outside OUTPUT
