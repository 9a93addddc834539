"""fer_utils.data.datasets: the three layouts, folder or zip, decoding, cache, and every bad input."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import RAF_ZIP, needs_raf, zip_tree
from fer_utils.data import datasets, info
from fer_utils.data.datasets import CLASS_NAMES, decode_image
from fer_utils.errors import DataError


def test_report_layout_loads_by_class_name(report_tree):
    # Lower-case alias folders must map onto the canonical order, not alphabetical order.
    (report_tree / "class" / "train" / "Happiness").rename(report_tree / "class" / "train" / "happy")
    ds = datasets.load(report_tree, image_size=16, verbose=False)
    assert ds.layout == "report"
    assert ds.class_names == CLASS_NAMES
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (28, 16, 16, 3)
    assert ds.counts()["train"] == {c: 4 for c in CLASS_NAMES}
    happy = [n for n, y in zip(ds.names_train, ds.y_train) if y == CLASS_NAMES.index("Happiness")]
    assert happy and all("/happy/" in n for n in happy)


def test_official_layout_folder_and_zip_agree(official_tree, tmp_path):
    a = datasets.load(official_tree, image_size=20, verbose=False)
    b = datasets.load(zip_tree(official_tree, tmp_path / "raf.zip"), image_size=20, verbose=False)
    assert a.layout == b.layout == "official"
    assert a.fingerprint == b.fingerprint
    assert a.counts() == {"train": {c: 3 for c in CLASS_NAMES}, "test": {c: 2 for c in CLASS_NAMES}}


def _official_to_csv(src, dest):
    """Build the popular DATASET/{train,test}/{1..7} + CSV layout from an official tree."""
    lines = (src / "basic" / "EmoLabel" / "list_patition_label.txt").read_text().split()
    rows = {"train": ["image,label"], "test": ["image,label"]}
    for name, lab in zip(lines[::2], lines[1::2]):
        split = name.split("_")[0]
        img = name.replace(".jpg", "_aligned.jpg")
        d = dest / "DATASET" / split / lab
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "basic" / "Image" / "aligned" / img, d / img)
        rows[split].append(f"{img},{lab}")
    for split, r in rows.items():
        (dest / f"{split}_labels.csv").write_text("\n".join(r) + "\n")
    return dest


def test_csv_layout_matches_official(official_tree, tmp_path):
    csv_tree = _official_to_csv(official_tree, tmp_path / "csvlayout")
    a = datasets.load(official_tree, image_size=20, verbose=False)
    b = datasets.load(csv_tree, image_size=20, verbose=False)
    assert b.layout == "csv"
    assert a.fingerprint == b.fingerprint  # same pixels, same labels, same order


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1"])
def test_modes_are_converted_to_rgb(mode):
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8))
    img = base.convert(mode) if mode != "I;16" else Image.fromarray((rng.integers(0, 65535, (10, 12))).astype(np.uint16))
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if mode == "CMYK" else "PNG")
    out = decode_image(buf.getvalue(), 8, name=f"x.{mode}")
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    if mode in ("L", "I;16", "1"):
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_nearest_resize_like_the_legacy_loader():
    # A 2x2 checkerboard upsampled with NEAREST keeps only the original values.
    img = np.array([[[0, 0, 0], [255, 255, 255]], [[255, 255, 255], [0, 0, 0]]], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    out = decode_image(buf.getvalue(), 4)
    assert set(np.unique(out)) == {0, 255}
    assert (out[:2, :2] == 0).all() and (out[:2, 2:] == 255).all()


def test_corrupt_file_fails_by_name_or_is_skipped_and_reported(report_tree):
    bad = report_tree / "class" / "train" / "Fear" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match="broken.png"):
        datasets.load(report_tree, image_size=16, verbose=False, cache=False)
    ds = datasets.load(report_tree, image_size=16, verbose=False, on_error="skip", cache=False)
    assert len(ds.skipped) == 1 and "broken.png" in ds.skipped[0]
    assert len(ds.y_train) == 28


def test_cache_is_used_and_invalidated(report_tree):
    a = datasets.load(report_tree, image_size=16, verbose=False)
    b = datasets.load(report_tree, image_size=16, verbose=False)
    assert not a.from_cache and b.from_cache and a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.x_train, b.x_train)
    # Changing a file changes the key: the data is decoded again, and differs.
    f = next((report_tree / "class" / "test" / "Anger").iterdir())
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(f)
    c = datasets.load(report_tree, image_size=16, verbose=False)
    assert not c.from_cache and c.fingerprint != a.fingerprint


# --- every bad input: the message names the problem and the path --------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.*no such file or folder"):
        datasets.load(tmp_path / "nowhere")


def test_no_layout(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    with pytest.raises(DataError, match=r"junk: no recognisable RAF-DB layout.*EmoLabel.*train_labels.csv.*class/"):
        datasets.load(tmp_path / "junk")


def test_class_folder_missing(report_tree):
    shutil.rmtree(report_tree / "class" / "test" / "Fear")
    with pytest.raises(DataError, match=r"class/test/Fear: class folder missing"):
        info.info(report_tree)


def test_class_folder_empty(report_tree):
    d = report_tree / "class" / "train" / "Disgust"
    for f in d.iterdir():
        f.unlink()
    (d / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"class/train/Disgust: class folder is empty"):
        info.info(report_tree)


def test_report_split_missing(report_tree):
    shutil.rmtree(report_tree / "class" / "test")
    with pytest.raises(DataError, match=r"class/test: split 'test' is missing"):
        info.info(report_tree)


def test_unknown_class_folder(report_tree):
    (report_tree / "class" / "train" / "Contempt").mkdir()
    (report_tree / "class" / "train" / "Contempt" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"Contempt.*not an emotion class"):
        info.info(report_tree)


def test_label_out_of_range(official_tree):
    f = official_tree / "basic" / "EmoLabel" / "list_patition_label.txt"
    f.write_text(f.read_text().replace("train_00001.jpg 1", "train_00001.jpg 9"))
    with pytest.raises(DataError, match=r"list_patition_label.txt, line 1: label '9' is out of range; expected an integer 1..7"):
        info.info(official_tree)


def test_csv_label_out_of_range(official_tree, tmp_path):
    t = _official_to_csv(official_tree, tmp_path / "c")
    f = t / "test_labels.csv"
    lines = f.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",0"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"test_labels.csv, line 2: label '0' is out of range"):
        info.info(t)


def test_official_split_missing(official_tree):
    f = official_tree / "basic" / "EmoLabel" / "list_patition_label.txt"
    f.write_text("\n".join(l for l in f.read_text().splitlines() if l.startswith("train")) + "\n")
    for img in (official_tree / "basic" / "Image" / "aligned").glob("test_*"):
        img.unlink()
    with pytest.raises(DataError, match=r"split 'test' is missing"):
        info.info(official_tree)


def test_csv_split_missing(official_tree, tmp_path):
    t = _official_to_csv(official_tree, tmp_path / "c")
    (t / "test_labels.csv").unlink()
    with pytest.raises(DataError, match=r"test_labels.csv: split 'test' is missing"):
        info.info(t)


def test_label_entry_without_image(official_tree):
    (official_tree / "basic" / "Image" / "aligned" / "train_00002_aligned.jpg").unlink()
    with pytest.raises(DataError, match=r"label entry 'train_00002.jpg' has no image.*train_00002_aligned.jpg"):
        info.info(official_tree)


def test_image_without_label(official_tree):
    f = official_tree / "basic" / "EmoLabel" / "list_patition_label.txt"
    f.write_text("\n".join(l for l in f.read_text().splitlines() if not l.startswith("train_00003")) + "\n")
    with pytest.raises(DataError, match=r"train_00003_aligned.jpg: image has no label"):
        info.info(official_tree)


def test_csv_image_without_label(official_tree, tmp_path):
    t = _official_to_csv(official_tree, tmp_path / "c")
    f = t / "train_labels.csv"
    f.write_text("\n".join(f.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match=r"image has no label in .*train_labels.csv"):
        info.info(t)


def test_bad_zip(tmp_path):
    z = tmp_path / "raf.zip"
    z.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"raf.zip: not a readable zip"):
        datasets.load(z)


def test_stratified_split_is_seeded_and_stratified():
    y = np.repeat(np.arange(7), [50, 10, 20, 100, 40, 20, 60])
    keep, held = datasets.stratified_split(y, 0.1, seed=3)
    keep2, held2 = datasets.stratified_split(y, 0.1, seed=3)
    np.testing.assert_array_equal(held, held2)
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(y)
    assert np.bincount(y[held], minlength=7).tolist() == [5, 1, 2, 10, 4, 2, 6]


# --- real RAF-DB (skipped without ../shared/data) -------------------------------------------------

RAF_COUNTS = {
    "train": {"Surprise": 1290, "Fear": 281, "Disgust": 717, "Happiness": 4772, "Sadness": 1982, "Anger": 705, "Neutral": 2524},
    "test": {"Surprise": 329, "Fear": 74, "Disgust": 160, "Happiness": 1185, "Sadness": 478, "Anger": 162, "Neutral": 680},
}


@needs_raf
def test_real_raf_official_zip_counts():
    rep = info.info(RAF_ZIP, read_sizes=False)
    assert rep["layout"] == "official"
    assert rep["totals"] == {"train": 12271, "test": 3068}
    assert rep["counts"] == RAF_COUNTS


@needs_raf
def test_real_raf_other_two_layouts_built_from_the_zip(tmp_path):
    """Build the csv and report layouts from the zip; all three give the same counts, and the
    same decoded arrays (fingerprint) at a small size."""
    with zipfile.ZipFile(RAF_ZIP) as zf:
        labels = zf.read("basic/EmoLabel/list_patition_label.txt").decode().split()
        csv_rows = {"train": ["image,label"], "test": ["image,label"]}
        for name, lab in zip(labels[::2], labels[1::2]):
            split = name.split("_")[0]
            img = name.replace(".jpg", "_aligned.jpg")
            data = zf.read(f"basic/Image/aligned/{img}")
            for dest in (tmp_path / "csv" / "DATASET" / split / lab, tmp_path / "rep" / "class" / split / CLASS_NAMES[int(lab) - 1]):
                dest.mkdir(parents=True, exist_ok=True)
                (dest / img).write_bytes(data)
            csv_rows[split].append(f"{img},{lab}")
    for split, rows in csv_rows.items():
        (tmp_path / "csv" / f"{split}_labels.csv").write_text("\n".join(rows) + "\n")
    for path, layout in ((tmp_path / "csv", "csv"), (tmp_path / "rep", "report")):
        rep = info.info(path, read_sizes=False)
        assert rep["layout"] == layout and rep["counts"] == RAF_COUNTS
    fps = {datasets.load(p, image_size=24, verbose=False, progress=False).fingerprint for p in (RAF_ZIP, tmp_path / "csv", tmp_path / "rep")}
    assert len(fps) == 1


# --- one split, a plain class-folder tree (what evaluating a model reads) ------------------------


def test_the_reports_class_folder_itself_loads_like_its_parent(report_tree):
    a = datasets.load(report_tree, image_size=16, verbose=False, cache=False)
    b = datasets.load(report_tree / "class", image_size=16, verbose=False, cache=False)
    assert b.layout == "report" and a.fingerprint == b.fingerprint


def test_test_split_of_every_layout(report_tree, official_tree, tmp_path):
    full = datasets.load(report_tree, image_size=16, verbose=False, cache=False)
    only = datasets.load_labelled(report_tree, image_size=16, verbose=False, cache=False)
    assert only.splits == ("test",) and len(only.y_train) == 0 and only.x_train.shape == (0, 16, 16, 3)
    np.testing.assert_array_equal(only.x_test, full.x_test)
    np.testing.assert_array_equal(only.y_test, full.y_test)
    assert list(only.counts()) == ["test"] and "14 test at 16x16" in only.describe()
    off = datasets.load(official_tree, image_size=16, split="test", verbose=False, cache=False)
    assert off.layout == "official" and len(off.y_test) == 14 and len(off.y_train) == 0


def test_plain_tree_with_aliases_contempt_and_missing_classes(tmp_path):
    rng = np.random.default_rng(0)
    for folder, n in (("Happy", 3), ("angry", 2), ("contempt", 2), ("cats", 1)):
        for i in range(n):
            d = tmp_path / "faces" / folder
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(d / f"{i}.png")  # grayscale
    ds = datasets.load(tmp_path / "faces", image_size=16, split="test", verbose=False, cache=False)
    assert ds.layout == "folders" and ds.x_test.shape == (5, 16, 16, 3)  # grayscale read as RGB
    assert sorted(CLASS_NAMES[i] for i in ds.y_test) == ["Anger"] * 2 + ["Happiness"] * 3
    assert any("contempt" in p and "2 images left out" in p for p in ds.problems)
    assert any("cats" in p and "1 images left out" in p for p in ds.problems)
    assert any("no images of Surprise, Fear" in p for p in ds.problems)
    with pytest.raises(DataError, match="no recognisable RAF-DB layout"):  # training needs both splits
        datasets.load(tmp_path / "faces", image_size=16, verbose=False, cache=False)


def test_plain_tree_with_train_only_has_no_test_split(tmp_path):
    d = tmp_path / "faces" / "train" / "happy"
    d.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "a.png")
    with pytest.raises(DataError, match=r"faces/test: no 'test' split; found only train/"):
        datasets.load(tmp_path / "faces", image_size=8, split="test", verbose=False, cache=False)
    ds = datasets.load(tmp_path / "faces" / "train", image_size=8, split="test", verbose=False, cache=False)
    assert len(ds.y_test) == 1


def test_csv_repeated_row_counted_once_conflicting_row_named(official_tree, tmp_path):
    t = _official_to_csv(official_tree, tmp_path / "c")
    f = t / "train_labels.csv"
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.warns(UserWarning, match="repeated label line"):
        rep = info.info(t, read_sizes=False)
    assert rep["totals"]["train"] == len(lines) - 1
    name, lab = lines[1].split(",")
    f.write_text("\n".join(lines + [f"{name},{int(lab) % 7 + 1}"]) + "\n")
    with pytest.raises(DataError, match=rf"train_labels.csv, line {len(lines) + 1}: '{name}' is labelled .* on line 2"):
        info.info(t, read_sizes=False)


def test_to_channels_matches_pil_luminance():
    rgb = np.random.default_rng(1).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    gray = datasets.to_channels(rgb, 1)
    pil = np.stack([np.asarray(Image.fromarray(x).convert("L")) for x in rgb])[..., None]
    assert np.abs(gray.astype(int) - pil).max() <= 1
    buf = io.BytesIO()
    Image.fromarray(rgb[0]).save(buf, format="PNG")
    assert decode_image(buf.getvalue(), 5, channels=1).shape == (5, 5, 1)


def test_format_info_prints_the_count_table_sizes_and_problems():
    rep = {"path": "raf.zip", "layout": "official", "synthetic": False, "base": "basic/",
           "counts": {"train": {"Happiness": 3, "Fear": 1}, "test": {"Happiness": 2, "Fear": 0}},
           "class_names": ["Fear", "Happiness"], "totals": {"train": 4, "test": 2},
           "image_sizes": {"100x100": 5, "90x90": 1}, "image_modes": {"RGB": 6}, "problems": ["1 unreadable image"]}
    assert info.format_info(rep).splitlines() == [
        "raf.zip: official layout (data set), under basic/",
        "class          train    test",
        "Fear               1       0",
        "Happiness          3       2",
        "total              4       2",
        "image sizes: 100x100 (5), 90x90 (1)",
        "image modes: RGB (6)",
        "problem: 1 unreadable image",
    ]
    assert "image sizes" not in info.format_info(dict(rep, image_sizes={}, image_modes={}))
