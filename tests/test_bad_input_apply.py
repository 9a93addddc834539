"""A corpus of bad inputs for the commands that apply a model (`fer evaluate`, `fer compare`,
`fer predict`, `fer export`, `fer ship`) and for training on several data sets (`fer train
--data A --data B`), as a hostile but honest user would try them.

Each case builds its inputs in a temporary folder (tiny synthetic images, no real data), calls
``fer_utils.cli.main([...])`` in this process and asserts: the exit code; ONE line that names
the file or argument and what was expected; no "Traceback"; and no file under the test's
folder created, changed or removed (the decode cache and run locks aside). None trains a model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_bad_input import check_case

IMG = ["--image-size", "24", "--depth", "2", "--batch-size", "8"]


def _file(t: Path, name: str, data: bytes = b"my notes\n") -> str:
    (t / name).write_bytes(data)
    return str(t / name)


def _folder(t: Path, name: str) -> str:
    (t / name).mkdir()
    return str(t / name)


def _copy(d: Path, t: Path) -> str:
    shutil.copytree(d, t / "copy")
    return str(t / "copy")


#: name -> (setup(tmp, tree, monkeypatch) -> argv, exit code, words the one line must contain)
CASES = {
    # fer evaluate
    "evaluate a damaged .keras": (lambda t, d, m: ["evaluate", _file(t, "m.keras", b"PK\x03\x04junk"), str(d)], 2,
                                  ["m.keras", "cannot be read as a Keras model"]),
    "evaluate a text file as the model": (lambda t, d, m: ["evaluate", _file(t, "m.keras"), str(d)], 2, ["m.keras", "expected a .keras file"]),
    "evaluate an unknown model name": (lambda t, d, m: ["evaluate", "no-such-run", str(d)], 2, ["no-such-run", "a run id"]),
    "evaluate missing data": (lambda t, d, m: ["evaluate", "shipped", str(t / "nowhere")], 2, ["nowhere", "no such file or folder"]),
    "evaluate data that is a text file": (lambda t, d, m: ["evaluate", "shipped", _file(t, "notes.txt")], 2, ["notes.txt", "not a readable zip"]),
    "evaluate an empty folder": (lambda t, d, m: ["evaluate", "shipped", _folder(t, "empty")], 2, ["empty", "no recognisable RAF-DB layout"]),
    "evaluate --batch-size 0": (lambda t, d, m: ["evaluate", "shipped", str(d), "--batch-size", "0"], 2, ["--batch-size"]),
    "evaluate --view bogus": (lambda t, d, m: ["evaluate", "shipped", str(d), "--view", "bogus"], 2, ["--view"]),
    "evaluate --faces bogus": (lambda t, d, m: ["evaluate", "shipped", str(d), "--faces", "bogus"], 2, ["--faces"]),
    "evaluate --tta bogus": (lambda t, d, m: ["evaluate", "shipped", str(d), "--tta", "bogus"], 2, ["--tta"]),
    "evaluate no data": (lambda t, d, m: ["evaluate", "shipped"], 2, ["data"]),
    "evaluate fer-package weights missing": (lambda t, d, m: (m.setenv("FER_PACKAGE_WEIGHTS", str(t / "none.hdf5")),
                                                              ["evaluate", "fer-package", str(d)])[1], 2, ["none.hdf5", "missing"]),
    "evaluate fer-package weights not a model": (lambda t, d, m: (m.setenv("FER_PACKAGE_WEIGHTS", _file(t, "w.hdf5")),
                                                                  ["evaluate", "fer-package", str(d)])[1], 2,
                                                 ["w.hdf5", "cannot be read as the fer package's model", "FER_PACKAGE_WEIGHTS"]),
    # fer compare
    "compare a damaged model B": (lambda t, d, m: ["compare", "shipped", _file(t, "b.keras", b"PK\x03\x04junk"), str(d)], 2, ["b.keras"]),
    "compare an unknown model A": (lambda t, d, m: ["compare", "nope", "shipped", str(d)], 2, ["nope"]),
    "compare missing data": (lambda t, d, m: ["compare", "shipped", "shipped", str(t / "nowhere")], 2, ["nowhere"]),
    "compare --tta bogus": (lambda t, d, m: ["compare", "shipped", "shipped", str(d), "--tta", "bogus"], 2, ["--tta"]),
    "compare --view bogus": (lambda t, d, m: ["compare", "shipped", "shipped", str(d), "--view", "bogus"], 2, ["--view"]),
    "compare one model only": (lambda t, d, m: ["compare", "shipped", str(d)], 2, ["data"]),
    # fer predict
    "predict a missing image": (lambda t, d, m: ["predict", str(t / "nowhere.jpg")], 2, ["nowhere.jpg", "no such file or folder"]),
    "predict an empty folder": (lambda t, d, m: ["predict", _folder(t, "photos")], 2, ["photos", "no image files found"]),
    "predict with a damaged model": (lambda t, d, m: ["predict", str(d), "--model", _file(t, "m.keras", b"PK\x03\x04junk")], 2, ["m.keras"]),
    "predict with an unknown model": (lambda t, d, m: ["predict", str(d), "--model", "no-such-run"], 2, ["no-such-run"]),
    "predict --faces bogus": (lambda t, d, m: ["predict", str(d), "--faces", "bogus"], 2, ["--faces"]),
    "predict --tta bogus": (lambda t, d, m: ["predict", str(d), "--tta", "bogus"], 2, ["--tta"]),
    "predict nothing": (lambda t, d, m: ["predict"], 2, ["IMAGE|FOLDER"]),
    # fer export
    "export --out of another format": (lambda t, d, m: ["export", "shipped", "--format", "onnx", "--out", str(t / "m.tflite")], 2,
                                       ["m.tflite", "ends in .onnx"]),
    "export --out a folder that exists": (lambda t, d, m: ["export", "shipped", "--format", "saved_model", "--out", _folder(t, "sm")], 2,
                                          ["sm", "already exists"]),
    "export --out a file that exists": (lambda t, d, m: ["export", "shipped", "--format", "onnx", "--out", _file(t, "m.onnx")], 2,
                                        ["m.onnx", "already exists"]),
    "export a missing model": (lambda t, d, m: ["export", str(t / "nope.keras"), "--format", "onnx", "--out", str(t / "m.onnx")], 2,
                               ["nope.keras", "no such model file"]),
    "export --format bogus": (lambda t, d, m: ["export", "shipped", "--format", "bogus", "--out", str(t / "m.onnx")], 2, ["--format"]),
    "export without --out": (lambda t, d, m: ["export", "shipped", "--format", "onnx"], 2, ["--out"]),
    # fer ship
    "ship --test without a name": (lambda t, d, m: ["ship", "some-run", "--test", str(d)], 2, ["--test", "NAME=PATH"]),
    "ship --test with an empty name": (lambda t, d, m: ["ship", "some-run", "--test", f"={d}"], 2, ["--test", "NAME=PATH"]),
    "ship --test of a missing set": (lambda t, d, m: ["ship", "some-run", "--test", f"RAF={t / 'nowhere'}"], 2, ["nowhere", "no such file"]),
    "ship an unknown run": (lambda t, d, m: ["ship", "no-such-run", "--test", f"RAF={d}"], 2, ["no-such-run", "fer runs"]),
    "ship without --test": (lambda t, d, m: ["ship", "some-run"], 2, ["--test"]),
    "ship --data of a missing set": (lambda t, d, m: ["ship", "some-run", "--test", f"RAF={d}", "--data", str(d), "--data",
                                                      str(t / "nowhere")], 2, ["--data", "nowhere", "no such file"]),
    "ship --data without a path": (lambda t, d, m: ["ship", "some-run", "--test", f"RAF={d}", "--data"], 2, ["--data"]),
    # fer train on several data sets
    "train --mix with one set": (lambda t, d, m: ["train", "--data", str(d), "--mix", "equal", *IMG, "--epochs", "1"], 2,
                                 ["--mix", "two or more --data"]),
    "train one set given twice": (lambda t, d, m: ["train", "--data", str(d), "--data", str(d), *IMG, "--epochs", "1"], 2,
                                  ["the same data set as --data", "give each set once"]),
    "train one set under two paths": (lambda t, d, m: ["train", "--data", str(d), "--data", _copy(d, t), *IMG, "--epochs", "1"], 2,
                                      ["copy", "the same faces as", "give each data set once"]),
    "train a second set missing": (lambda t, d, m: ["train", "--data", str(d), "--data", str(t / "nowhere"), *IMG, "--epochs", "1"], 2,
                                   ["--data", "nowhere", "no such file or folder"]),
    "train a second set that is a text file": (lambda t, d, m: ["train", "--data", str(d), "--data", _file(t, "n.zip"), *IMG, "--epochs", "1"],
                                               2, ["n.zip", "not a readable zip"]),
    "train --mix bogus": (lambda t, d, m: ["train", "--data", str(d), "--data", str(d), "--mix", "bogus"], 2, ["--mix"]),
    "train --epoch-faces 0": (lambda t, d, m: ["train", "--data", str(d), "--epoch-faces", "0"], 2, ["--epoch-faces"]),
    "train --epoch-faces x": (lambda t, d, m: ["train", "--data", str(d), "--epoch-faces", "x"], 2, ["--epoch-faces"]),
    "train --seed past 2**32-1": (lambda t, d, m: ["train", "--data", str(d), "--seed", "4294967296"], 2, ["--seed", "4294967295"]),
    "train --model bogus": (lambda t, d, m: ["train", "--data", str(d), "--model", "bogus"], 2, ["--model"]),
    "train --depth with resnet": (lambda t, d, m: ["train", "--data", str(d), "--model", "resnet", "--depth", "3"], 2,
                                  ["--depth", "not of model 'resnet'"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, report_tree, monkeypatch, capsys):
    monkeypatch.delenv("FER_PACKAGE_WEIGHTS", raising=False)
    check_case(CASES[name], tmp_path, report_tree, monkeypatch, capsys)


def test_corpus_size():
    """Every command of this file's scope has its cases (issue 27 asked for 60 new ones overall)."""
    commands = {argv_command for argv_command in (n.split()[0] for n in CASES)}
    assert commands == {"evaluate", "compare", "predict", "export", "ship", "train"} and len(CASES) >= 45
