"""A corpus of bad input for the data commands: ``fer data info``, ``fer synth``, ``fer organize``.

Everything is made here (PIL noise images, hand-built PNG headers and zips; no real faces).
The CLI runs in-process (``fer_utils.cli.main``). For each case: the exit code; on an error,
ONE line naming the file or argument; never a Python traceback; and no input or foreign file
changed (trees hashed before and after). Cases are tagged with the kind of failure they guard
against: ``traceback``, ``unclear`` (wrong/silent/misleading), ``loss`` (data lost, duplicated
or written outside OUTPUT).
"""

from __future__ import annotations

import builtins
import csv
import errno
import hashlib
import io
import json
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_official_layout, write_report_layout
from fer_utils.cli import main

META = {"predictions.csv", "errors.csv", ".organize-journal.csv", ".organize-state.json", ".organize-sheets.json", "sorted_by.json"}


# --------------------------------------------------------------------------------------------
# Helpers


def png(seed: int, size=(28, 24), mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side: int = 30000) -> bytes:
    """A tiny PNG whose header claims side x side pixels: PIL refuses it as a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def tree_hash(root: Path, skip=()) -> str:
    h = hashlib.sha256()
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel in skip:
            continue
        h.update(rel.encode() + b"\0")
        if p.is_symlink():
            h.update(b"link:" + os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def fer(capsys, *args):
    """Run ``fer ARGS`` in-process; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err, *names, exit_code=2):
    assert code == exit_code, (code, out, err)
    assert "Traceback" not in out + err
    # progress bars (tqdm, on stderr, redrawn with \r) are not messages
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "img/s]" not in line]
    assert len(lines) == 1, err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def copies(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and p.name not in META and not p.relative_to(out).as_posix().startswith("_sheets/"))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from fer_utils.models.report_cnn import build_model
    from fer_utils.models.registry import save_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    save_model(build_model(depth=2, input_size=32, seed=1), path)
    return path


@pytest.fixture(autouse=True)
def _figures_elsewhere(tmp_path, monkeypatch):
    """The project's figures/ is a temporary folder that must stay absent (nothing outside OUTPUT)."""
    from fer_utils import paths

    monkeypatch.setattr(paths, "FIGURES_DIR", tmp_path / "_project_figures")
    yield
    assert not (tmp_path / "_project_figures").exists()


def faces(root: Path, n: int = 5) -> Path:
    for i in range(n):
        write(root / f"{20 + i}_0_0_2017{i:04d}.jpg.chip.png", png(i))
    return root


def organize(capsys, src, out, model_path, *extra):
    return fer(capsys, "organize", src, out, "--model", model_path, *extra)


def fail_writes(monkeypatch, under: Path, err=errno.ENOSPC):
    """Every write under ``under`` fails with ``err`` (a full disk, a read-only file system):
    opening a file for writing, making a folder or a temporary file, renaming into place."""
    under = str(under)
    msg = os.strerror(err)

    def hit(p):
        try:
            return os.path.abspath(os.fspath(p)).startswith(under)
        except TypeError:
            return False

    real_open, real_os_open, real_mkdir, real_replace = builtins.open, os.open, os.mkdir, os.replace

    def fake_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and hit(file):
            raise OSError(err, msg, os.fspath(file))
        return real_open(file, mode, *a, **k)

    def fake_os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and hit(path):
            raise OSError(err, msg, os.fspath(path))
        return real_os_open(path, flags, *a, **k)

    def fake_mkdir(path, *a, **k):
        if hit(path):
            raise OSError(err, msg, os.fspath(path))
        return real_mkdir(path, *a, **k)

    def fake_replace(src, dst, *a, **k):
        if hit(dst):
            raise OSError(err, msg, os.fspath(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "replace", fake_replace)


# --------------------------------------------------------------------------------------------
# fer data info (and the loader behind fer train)


def test_info_missing_path(tmp_path, capsys):  # unclear
    assert_one_line_error(*fer(capsys, "data", "info", tmp_path / "nowhere"), "nowhere")


def test_info_empty_folder_says_so(tmp_path, capsys):  # unclear
    (tmp_path / "empty").mkdir()
    code, out, err = fer(capsys, "data", "info", tmp_path / "empty")
    assert_one_line_error(code, out, err, "empty", "Found nothing")


def test_info_not_a_zip(tmp_path, capsys):  # unclear
    write(tmp_path / "raf.zip", b"this is not a zip")
    assert_one_line_error(*fer(capsys, "data", "info", tmp_path / "raf.zip"), "raf.zip", "not a readable zip")


def test_info_accepts_the_reports_class_folder_itself(tmp_path, capsys):  # unclear (was refused)
    write_report_layout(tmp_path / "ds", per_class=(2, 1))
    before = tree_hash(tmp_path / "ds")
    code, out, err = fer(capsys, "data", "info", tmp_path / "ds" / "class", "--no-sizes")
    assert code == 0, err
    assert "report layout" in out and "14" in out and "7" in out
    code2, out2, _ = fer(capsys, "data", "info", tmp_path / "ds", "--no-sizes")
    assert code2 == 0 and out2.splitlines()[1:] == out.splitlines()[1:]
    assert tree_hash(tmp_path / "ds") == before


def test_info_reads_a_plain_class_folder_tree_as_evaluate_does(tmp_path, capsys):  # was refused without --split
    write_report_layout(tmp_path / "ds", per_class=(2, 1))
    code, out, err = fer(capsys, "data", "info", tmp_path / "ds" / "class" / "train", "--json", "--no-sizes")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["totals"] == {"test": 14} and rep["counts"]["test"]["Happiness"] == 2
    (tmp_path / "nothing" / "Cats").mkdir(parents=True)
    (tmp_path / "nothing" / "Cats" / "a.png").write_bytes(png(1))
    code, out, err = fer(capsys, "data", "info", tmp_path / "nothing")
    assert_one_line_error(code, out, err, "nothing", "--split")


def test_info_zip_with_a_path_twice(tmp_path, capsys):  # unclear (counted twice)
    write_report_layout(tmp_path / "ds", per_class=(2, 1))
    z = tmp_path / "dup.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(z, "w") as zf:
        warnings.simplefilter("ignore")
        for p in sorted((tmp_path / "ds").rglob("*.png")):
            zf.write(p, p.relative_to(tmp_path / "ds").as_posix())
        zf.writestr("class/train/Fear/train_Fear_000.png", png(77))
    before = tree_hash(z)
    assert_one_line_error(*fer(capsys, "data", "info", z), "dup.zip!class/train/Fear/train_Fear_000.png", "2 entries")
    assert tree_hash(z) == before


def test_info_label_file_conflicting_lines(tmp_path, capsys):  # unclear (counted twice)
    write_official_layout(tmp_path / "raf", per_class=(2, 1))
    f = tmp_path / "raf" / "basic" / "EmoLabel" / "list_patition_label.txt"
    f.write_text(f.read_text() + "train_00001.jpg 4\n")
    n = len(f.read_text().splitlines())
    assert_one_line_error(*fer(capsys, "data", "info", tmp_path / "raf"), "list_patition_label.txt", f"line {n}", "line 1")


def test_info_label_file_repeated_lines_counted_once(tmp_path, capsys):  # unclear (counted twice)
    write_official_layout(tmp_path / "raf", per_class=(2, 1))
    f = tmp_path / "raf" / "basic" / "EmoLabel" / "list_patition_label.txt"
    f.write_text(f.read_text() + "train_00001.jpg 1\ntest_0001.jpg 1\n")
    code, out, err = fer(capsys, "data", "info", tmp_path / "raf", "--json", "--no-sizes")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["totals"] == {"train": 14, "test": 7}
    assert sum("counted once" in p for p in rep["problems"]) == 2


def test_info_and_load_name_a_decompression_bomb(tmp_path, capsys):  # traceback
    from fer_utils.data import datasets
    from fer_utils.errors import DataError

    write_report_layout(tmp_path / "ds", per_class=(2, 1))
    write(tmp_path / "ds" / "class" / "train" / "Fear" / "bomb.png", bomb_png())
    code, out, err = fer(capsys, "data", "info", tmp_path / "ds")
    assert code == 0 and "Traceback" not in out + err
    assert any("bomb.png" in line and "decompression bomb" in line for line in out.splitlines())
    with pytest.raises(DataError, match=r"bomb.png: image too large to decode safely"):
        datasets.load(tmp_path / "ds", image_size=16, verbose=False, cache=False)


def test_load_names_a_symlink_to_itself(tmp_path, capsys):  # traceback
    from fer_utils.data import datasets
    from fer_utils.errors import DataError

    write_report_layout(tmp_path / "ds", per_class=(2, 1))
    os.symlink("loop.png", tmp_path / "ds" / "class" / "test" / "Anger" / "loop.png")
    code, out, err = fer(capsys, "data", "info", tmp_path / "ds")
    assert code == 0 and "Traceback" not in out + err and "loop.png" in out
    with pytest.raises(DataError, match=r"loop.png: cannot read \(Too many levels of symbolic links\)"):
        datasets.load(tmp_path / "ds", image_size=16, verbose=False, cache=False)


def test_load_names_a_zip_member_with_a_bad_crc(tmp_path, capsys):  # traceback
    from fer_utils.data import datasets
    from fer_utils.errors import DataError

    write_report_layout(tmp_path / "ds", per_class=(2, 1))
    z = tmp_path / "ds.zip"
    target = tmp_path / "ds" / "class" / "train" / "Sadness" / "train_Sadness_001.png"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted((tmp_path / "ds").rglob("*.png")):
            zf.write(p, p.relative_to(tmp_path / "ds").as_posix())
    raw = bytearray(z.read_bytes())
    at = raw.find(target.read_bytes()) + 40
    raw[at] ^= 0xFF
    z.write_bytes(bytes(raw))
    code, out, err = fer(capsys, "data", "info", z)
    assert code == 0 and "Traceback" not in out + err and "train_Sadness_001.png" in out
    with pytest.raises(DataError, match=r"train_Sadness_001.png: cannot read \(cannot read from the zip \(BadZipFile: Bad CRC-32"):
        datasets.load(z, image_size=16, verbose=False, cache=False)


def test_info_plain_class_tree_for_one_split(tmp_path, capsys):  # unclear (was refused)
    for folder, n in (("happy", 2), ("ANGRY", 1), ("contempt", 3), ("sad", 1)):
        for i in range(n):
            write(tmp_path / "set" / "test" / folder / f"{i}.png", png(i))
    code, out, err = fer(capsys, "data", "info", tmp_path / "set", "--split", "test", "--no-sizes")
    assert code == 0, err
    assert "folders layout" in out and "contempt" in out and "3 images left out" in out
    code, out, err = fer(capsys, "data", "info", tmp_path / "set", "--split", "test", "--json", "--no-sizes")
    rep = json.loads(out)
    assert rep["totals"] == {"test": 4} and rep["counts"]["test"]["Happiness"] == 2 and rep["counts"]["test"]["Anger"] == 1


# --------------------------------------------------------------------------------------------
# fer synth


TINY = ["--n-train", "14", "--n-test", "7", "--n-unlabelled", "2"]


def test_synth_negative_seed(tmp_path, capsys):  # traceback
    assert_one_line_error(*fer(capsys, "synth", "--out", tmp_path / "s", "--seed", "-1", *TINY), "--seed")
    assert not (tmp_path / "s").exists()


def test_synth_negative_unlabelled(tmp_path, capsys):  # unclear
    assert_one_line_error(*fer(capsys, "synth", "--out", tmp_path / "s", *TINY[:4], "--n-unlabelled", "-3"), "--n-unlabelled")


def test_synth_out_is_a_file(tmp_path, capsys):  # traceback
    f = write(tmp_path / "s", b"mine")
    assert_one_line_error(*fer(capsys, "synth", "--out", f, *TINY), str(f))
    assert f.read_bytes() == b"mine"


def test_synth_refuses_a_foreign_folder(tmp_path, capsys):  # loss
    write(tmp_path / "s" / "thesis.tex", b"precious")
    before = tree_hash(tmp_path / "s")
    assert_one_line_error(*fer(capsys, "synth", "--out", tmp_path / "s", *TINY), str(tmp_path / "s"))
    assert tree_hash(tmp_path / "s") == before


def test_synth_other_seed_keeps_the_users_files(tmp_path, capsys):  # loss
    code, _, err = fer(capsys, "synth", "--out", tmp_path / "s", *TINY)
    assert code == 0, err
    write(tmp_path / "s" / "notes.txt", b"my notes")
    write(tmp_path / "s" / "results" / "table.csv", b"1,2\n")
    before = tree_hash(tmp_path / "s")
    code, out, err = fer(capsys, "synth", "--out", tmp_path / "s", *TINY, "--seed", "7")
    assert_one_line_error(code, out, err, "notes.txt", "not made by the generator")
    assert tree_hash(tmp_path / "s") == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".s")) == []


def test_synth_full_disk(tmp_path, capsys, monkeypatch):  # traceback
    code, _, err = fer(capsys, "synth", "--out", tmp_path / "s", *TINY)
    assert code == 0, err
    before = tree_hash(tmp_path / "s")
    fail_writes(monkeypatch, tmp_path)
    code, out, err = fer(capsys, "synth", "--out", tmp_path / "s", *TINY, "--seed", "3")
    monkeypatch.undo()
    assert_one_line_error(code, out, err, "No space left on device")
    assert tree_hash(tmp_path / "s") == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".s")] == []  # no partial folder left


# --------------------------------------------------------------------------------------------
# fer organize


def test_organize_missing_input(tmp_path, capsys, model_path):  # unclear
    assert_one_line_error(*organize(capsys, tmp_path / "nope", tmp_path / "out", model_path), "nope")
    assert not (tmp_path / "out").exists()


def test_organize_empty_folder(tmp_path, capsys, model_path):  # unclear (was "0 sorted" exit 0)
    (tmp_path / "in").mkdir()
    assert_one_line_error(*organize(capsys, tmp_path / "in", tmp_path / "out", model_path), "in", "no image files")
    assert not (tmp_path / "out").exists()


def test_organize_names_zip_members_that_leave_the_zip(tmp_path, capsys, model_path):  # silently dropped before
    z = tmp_path / "slip.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok.png", png(1))
        for bad in ("../evil.png", "/abs.png", "a/../../up.png"):
            zf.writestr(bad, png(2))
    code, out, err = organize(capsys, z, tmp_path / "out", model_path)
    assert code == 0 and "Traceback" not in err
    rows = (tmp_path / "out" / "errors.csv").read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == ["../evil.png", "/abs.png", "a/../../up.png"]
    assert all("leaves the zip's folder" in r for r in rows)
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "up.png").exists()
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png") if "_sheets" not in p.parts) == ["ok.png"]


def test_file_names_that_are_not_utf8_are_named_not_crashed_on(tmp_path, capsys, model_path):  # traceback before
    import os

    src = faces(tmp_path / "in", n=2)
    bad = os.fsencode(src) + b"/bad\xff\xfe.png"
    with open(bad, "wb") as f:
        f.write(png(3))
    code, out, err = organize(capsys, src, tmp_path / "out", model_path)
    assert code == 0 and "Traceback" not in err
    rows = (tmp_path / "out" / "errors.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(rows) == 1 and rows[0].startswith("bad\\xff\\xfe.png,") and "not valid UTF-8" in rows[0]
    assert len((tmp_path / "out" / "predictions.csv").read_text().splitlines()) == 3  # the two others sorted
    # the loader behind evaluate leaves it out and says so
    ds = write_report_layout(tmp_path / "ds", per_class=(2, 1))
    with open(os.fsencode(ds / "class" / "test" / "Fear") + b"/x\xff.png", "wb") as f:
        f.write(png(4))
    from fer_utils.data import datasets

    loaded = datasets.load(ds, image_size=16, verbose=False, cache=False)
    assert len(loaded.y_test) == 7 and any("not valid UTF-8" in p for p in loaded.problems)


def test_organize_zip_of_zips(tmp_path, capsys, model_path):  # unclear (was "0 sorted" exit 0)
    faces(tmp_path / "f")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for p in sorted((tmp_path / "f").iterdir()):
            zf.write(p, p.name)
    with zipfile.ZipFile(tmp_path / "outer.zip", "w") as zf:
        zf.writestr("faces.zip", inner.getvalue())
    before = tree_hash(tmp_path / "outer.zip")
    assert_one_line_error(*organize(capsys, tmp_path / "outer.zip", tmp_path / "out", model_path), "outer.zip", "zip of zips")
    assert tree_hash(tmp_path / "outer.zip") == before and not (tmp_path / "out").exists()


def test_organize_output_is_a_file(tmp_path, capsys, model_path):  # traceback
    faces(tmp_path / "in")
    f = write(tmp_path / "out", b"mine")
    assert_one_line_error(*organize(capsys, tmp_path / "in", f, model_path), str(f), "is a file")
    assert f.read_bytes() == b"mine"


def test_organize_read_only_output(tmp_path, capsys, model_path, monkeypatch):  # traceback
    faces(tmp_path / "in")
    (tmp_path / "out").mkdir()
    before = tree_hash(tmp_path / "in")
    fail_writes(monkeypatch, tmp_path / "out", errno.EROFS)
    code, out, err = organize(capsys, tmp_path / "in", tmp_path / "out", model_path)
    monkeypatch.undo()
    assert_one_line_error(code, out, err, "out", "Read-only file system")
    assert list((tmp_path / "out").iterdir()) == [] and tree_hash(tmp_path / "in") == before


def test_organize_full_disk_leaves_nothing_half_written(tmp_path, capsys, model_path, monkeypatch):  # traceback
    faces(tmp_path / "in")
    before = tree_hash(tmp_path / "in")
    (tmp_path / "out").mkdir()
    real_replace = os.replace

    def full(src, dst, *a, **k):  # the first copies fail, as a disk that fills up mid-run
        if "out" in str(dst) and str(dst).endswith(".png"):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    code, out, err = organize(capsys, tmp_path / "in", tmp_path / "out", model_path)
    monkeypatch.undo()
    assert_one_line_error(code, out, err, "No space left on device")
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]
    assert tree_hash(tmp_path / "in") == before
    code, _, err = organize(capsys, tmp_path / "in", tmp_path / "out", model_path)  # space again: resumes
    assert code == 0, err
    assert len(copies(tmp_path / "out")) == 5


def test_organize_zip_with_a_path_twice(tmp_path, capsys, model_path):  # loss
    z = tmp_path / "faces.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(z, "w") as zf:
        warnings.simplefilter("ignore")
        zf.writestr("a/1_0_0_x.png", png(1))
        zf.writestr("a/2_0_0_y.png", png(2))
        zf.writestr("a/1_0_0_x.png", png(3))
    code, out, err = organize(capsys, z, tmp_path / "out", model_path)
    assert code == 0, err
    rows = read_csv(tmp_path / "out" / "predictions.csv")
    errors = read_csv(tmp_path / "out" / "errors.csv")
    assert [r["source"] for r in rows] == ["a/2_0_0_y.png"]
    assert [e["source"] for e in errors] == ["a/1_0_0_x.png"] and "2 entries" in errors[0]["reason"]
    assert copies(tmp_path / "out") == [rows[0]["destination"]]


def test_organize_changed_input_replaces_its_own_copy(tmp_path, capsys, model_path):  # loss
    faces(tmp_path / "in")
    assert organize(capsys, tmp_path / "in", tmp_path / "out", model_path)[0] == 0
    changed = tmp_path / "in" / "22_0_0_20170002.jpg.chip.png"
    changed.write_bytes(png(99))
    write(tmp_path / "out" / "notes.md", b"the user's")
    code, _, err = organize(capsys, tmp_path / "in", tmp_path / "out", model_path)
    assert code == 0, err
    files = copies(tmp_path / "out")
    assert len(files) == 6 and "notes.md" in files  # 5 copies and the user's note, no "name (2).png"
    assert not any(" (2)" in f for f in files)
    row = next(r for r in read_csv(tmp_path / "out" / "predictions.csv") if r["source"] == changed.name)
    assert (tmp_path / "out" / row["destination"]).read_bytes() == changed.read_bytes()
    assert (tmp_path / "out" / "notes.md").read_bytes() == b"the user's"


def test_organize_bad_files_are_rows_and_a_second_run_is_byte_identical(tmp_path, capsys, model_path):  # traceback, unclear
    src = faces(tmp_path / "in")
    write(src / "bomb.png", bomb_png())
    write(src / "notes.txt", b"not an image")
    write(src / "broken.jpg", b"\xff\xd8\xff garbage")
    os.symlink("loop.png", src / "loop.png")
    before = tree_hash(src)
    code, out, err = organize(capsys, src, tmp_path / "out", model_path)
    assert code == 0 and "Traceback" not in out + err, err
    reasons = {e["source"]: e["reason"] for e in read_csv(tmp_path / "out" / "errors.csv")}
    assert sorted(reasons) == ["bomb.png", "broken.jpg", "loop.png", "notes.txt"]
    assert "too large" in reasons["bomb.png"] and "not an image file" in reasons["notes.txt"]
    assert "symbolic links" in reasons["loop.png"]
    for r in reasons.values():
        assert "0x" not in r and "on_error" not in r and "<" not in r
    assert len(read_csv(tmp_path / "out" / "predictions.csv")) == 5
    assert list((tmp_path / "out" / "_sheets").glob("*.png"))  # contact sheets under OUTPUT
    first = tree_hash(tmp_path / "out")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")}
    assert organize(capsys, src, tmp_path / "out", model_path)[0] == 0
    assert tree_hash(tmp_path / "out") == first
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")} == stamps
    assert tree_hash(src) == before


def test_organize_bad_crc_member_is_a_row(tmp_path, capsys, model_path):  # traceback
    z = tmp_path / "faces.zip"
    data = png(5)
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("1_0_0_a.png", png(4))
        zf.writestr("2_0_0_b.png", data)
    raw = bytearray(z.read_bytes())
    raw[raw.find(data) + 40] ^= 0xFF
    z.write_bytes(bytes(raw))
    code, out, err = organize(capsys, z, tmp_path / "out", model_path)
    assert code == 0 and "Traceback" not in out + err, err
    errors = read_csv(tmp_path / "out" / "errors.csv")
    assert [e["source"] for e in errors] == ["2_0_0_b.png"] and "Bad CRC-32" in errors[0]["reason"]


def test_organize_corrupt_classes_json(tmp_path, capsys, model_path):  # traceback
    import shutil

    faces(tmp_path / "in")
    m = tmp_path / "m.keras"
    shutil.copy(model_path, m)
    write(tmp_path / "m.keras.classes.json", b"{not json")
    assert_one_line_error(*organize(capsys, tmp_path / "in", tmp_path / "out", m), "m.keras.classes.json")


@pytest.mark.parametrize("names, says", [
    (["Happiness"] * 7, "the class name 'Happiness' is given twice"),
    ([1, 2, 3, 4, 5, 6, 7], "class name 1 is not a string"),
    (["Surprise", "Fear", "Disgust", "Happi\u0000ness", "Sadness", "Anger", "Neutral"], "holds a control character"),
    (["", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"], "is empty"),
])
def test_organize_refuses_bad_class_names(tmp_path, capsys, model_path, names, says):
    """The class names of a model name folders: distinct, non-empty strings without control
    characters, or one line naming the file (before anything is copied)."""
    import shutil

    faces(tmp_path / "in")
    m = tmp_path / "m.keras"
    shutil.copy(model_path, m)
    write(tmp_path / "m.keras.classes.json", json.dumps({"class_names": names}).encode())
    assert_one_line_error(*organize(capsys, tmp_path / "in", tmp_path / "out", m), says)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_organize_one_channel_model(tmp_path, capsys):  # traceback
    import keras

    from fer_utils.models.registry import save_model

    inp = keras.Input((16, 16, 1))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inp))
    m = keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x))
    save_model(m, tmp_path / "gray.keras")
    faces(tmp_path / "in")
    code, out, err = organize(capsys, tmp_path / "in", tmp_path / "out", tmp_path / "gray.keras")
    assert code == 0 and "Traceback" not in out + err, err
    assert len(read_csv(tmp_path / "out" / "predictions.csv")) == 5


def test_organize_not_a_model(tmp_path, capsys):  # unclear
    faces(tmp_path / "in")
    m = write(tmp_path / "m.keras", b"not a keras file")
    assert_one_line_error(*organize(capsys, tmp_path / "in", tmp_path / "out", m), "m.keras")
