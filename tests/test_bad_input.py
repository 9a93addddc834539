"""A corpus of bad inputs for `fer train`, `fer model summary`, `fer runs` and the CLI itself.

Each case builds its own inputs in a temporary folder (no real images), calls
``fer_utils.cli.main([...])`` in this process and asserts: the exit code; a message of ONE line
that names the file or argument; no "Traceback"; and that no input or foreign file changed
(every file under the test's folder is hashed before and after; the decode cache and run
locks are the command's own). None of these cases trains a model.

The corpus deliberately uses only names that existed before the run store was reorganised
(``cli.main``, ``config.RunConfig``, ``datasets.load``, ``model.build_model``), so that it can
be run against an older checkout for a before/after count.
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pytest

from fer_utils import paths
from fer_utils.cli import main

IMG = ["--image-size", "24", "--depth", "2", "--batch-size", "8"]


def _snapshot(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if "_cache" in p.parts or p.name == ".lock":
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _cfg(tree):
    from fer_utils.data import datasets
    from fer_utils.training.config import RunConfig

    ds = datasets.load(tree, image_size=24, verbose=False)
    return RunConfig(data=ds.fingerprint, lr=0.001, depth=2, batch_size=8, seed=0, image_size=24), ds


def _fake_run(tree, epochs_done=1, *, config=None, history=None, checkpoint=b"PK\x03\x04truncated", metrics=None, model=False):
    """A run folder in the store as training would leave it, written by hand (no training)."""
    cfg, ds = _cfg(tree)
    d = Path(paths.RUNS_DIR) / cfg.run_id
    d.mkdir(parents=True)
    (d / "config.json").write_text(config if config is not None else json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    rows = "".join(f"{e},1.9,0.2,1.9,0.2,0.5\n" for e in range(1, epochs_done + 1))
    (d / "history.csv").write_text(history if history is not None else "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n" + rows)
    if checkpoint is not None:
        (d / "checkpoint.keras").write_bytes(checkpoint)
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    if model:
        from fer_utils.models.report_cnn import build_model

        build_model(2, 24, 7, seed=0).save(d / f"model-e{epochs_done:04d}.keras")
    return d


def _enospc(monkeypatch):
    """A full disk: every atomic replace (the last step of every write of ours) fails."""
    import fer_utils.atomic as atomic

    def full(src, dst, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(atomic.os, "replace", full)


def _interrupt(monkeypatch):
    from fer_utils.data import datasets

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "load", stop)


# name -> (setup(tmp, tree, monkeypatch) -> argv, expected exit code, words the one line must contain)
CASES = {
    # the generic CLI
    "no command": (lambda t, d, m: [], 2, ["command"]),
    "unknown command": (lambda t, d, m: ["frobnicate"], 2, ["frobnicate"]),
    "unknown flag": (lambda t, d, m: ["train", "--data", str(d), "--bogus"], 2, ["--bogus"]),
    "ctrl-c": (lambda t, d, m: (_interrupt(m), ["train", "--data", str(d), *IMG, "--epochs", "1"])[1], 130, ["interrupted"]),
    # fer train: arguments
    "train --seed -1": (lambda t, d, m: ["train", "--data", str(d), "--seed", "-1"], 2, ["--seed"]),
    "train --seed x": (lambda t, d, m: ["train", "--data", str(d), "--seed", "x"], 2, ["--seed"]),
    "train --epochs 0": (lambda t, d, m: ["train", "--data", str(d), "--epochs", "0"], 2, ["--epochs"]),
    "train --lr 0": (lambda t, d, m: ["train", "--data", str(d), "--lr", "0"], 2, ["--lr"]),
    "train --batch-size abc": (lambda t, d, m: ["train", "--data", str(d), "--batch-size", "abc"], 2, ["--batch-size"]),
    "train --depth 7": (lambda t, d, m: ["train", "--data", str(d), "--depth", "7"], 2, ["--depth"]),
    "train --image-size 100000": (lambda t, d, m: ["train", "--data", str(d), "--image-size", "100000"], 2, ["--image-size"]),
    "train --depth 6 --image-size 32": (lambda t, d, m: ["train", "--data", str(d), "--depth", "6", "--image-size", "32", "--epochs", "1"], 2, ["--image-size"]),
    "train --selection bogus": (lambda t, d, m: ["train", "--data", str(d), "--selection", "bogus"], 2, ["--selection"]),
    "train no --data": (lambda t, d, m: ["train"], 2, ["--data"]),
    "train --data missing": (lambda t, d, m: ["train", "--data", str(t / "nowhere"), *IMG, "--epochs", "1"], 2, ["nowhere"]),
    # fer train: destinations, checked before any training
    "train --save .h5": (lambda t, d, m: ["train", "--data", str(d), *IMG, "--epochs", "1", "--save", str(t / "m.h5")], 2, ["m.h5", ".keras"]),
    "train --save is a folder": (lambda t, d, m: ((t / "out.keras").mkdir(), ["train", "--data", str(d), *IMG, "--epochs", "1", "--save", str(t / "out.keras")])[1], 2, ["out.keras"]),
    "train --save under a file": (lambda t, d, m: ((t / "notes.txt").write_text("mine"), ["train", "--data", str(d), *IMG, "--epochs", "1", "--save", str(t / "notes.txt" / "m.keras")])[1], 2, ["notes.txt"]),
    "train --run-dir is a file": (lambda t, d, m: ((t / "r.txt").write_text("mine"), ["train", "--data", str(d), *IMG, "--epochs", "1", "--run-dir", str(t / "r.txt")])[1], 2, ["r.txt"]),
    # fer train: a damaged run store
    "train truncated checkpoint.keras": (lambda t, d, m: (_fake_run(d), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["checkpoint.keras", "delete the run folder"]),
    "train corrupt history.csv": (lambda t, d, m: (_fake_run(d, history="epoch,loss\n1,zz\n\x00\x01"), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["history.csv", "delete the run folder"]),
    "train corrupt config.json": (lambda t, d, m: (_fake_run(d, config="{not json"), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["config.json", "delete the run folder"]),
    # fer train: run files of the wrong shape (fer_utils.jsonfile: the file, the key, what was expected)
    "train config.json a list": (lambda t, d, m: (_fake_run(d, config="[1, 2]"), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["config.json", "should be a JSON object, got a list"]),
    "train config.json data a number": (lambda t, d, m: (_fake_run(d, config='{"data": 7}'), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["config.json", "key 'data' should be a string, got a whole number (7)"]),
    "train config.json not UTF-8": (lambda t, d, m: (_fake_run(d, config="{\"data\": \"\udcff\"}".encode("utf-8", "surrogateescape").decode("latin-1")), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["config.json"]),
    "train metrics.json a list": (lambda t, d, m: (_fake_run(d, metrics=[1]), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["metrics.json", "should be a JSON object, got a list"]),
    "train metrics.json evaluations a list": (lambda t, d, m: (_fake_run(d, metrics={"evaluations": []}), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["metrics.json", "key 'evaluations' should be a JSON object, got a list"]),
    "train history without checkpoint": (lambda t, d, m: (_fake_run(d, checkpoint=None), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], 2, ["checkpoint.keras"]),
    # full disk (ENOSPC on every atomic write)
    "train full disk": (lambda t, d, m: (_enospc(m), ["train", "--data", str(d), *IMG, "--epochs", "1"])[1], 2, ["No space left", "config.json"]),
    "train --save full disk": (lambda t, d, m: (_fake_run(d, 1, metrics={"evaluations": {"1": {}}}, model=True), _enospc(m),
                                                ["train", "--data", str(d), *IMG, "--epochs", "1", "--save", str(t / "m.keras")])[2], 2, ["m.keras", "No space left"]),
    # fer model summary
    "summary --input-size 100000": (lambda t, d, m: ["model", "summary", "--input-size", "100000"], 2, ["--input-size"]),
    "summary --input-size 0": (lambda t, d, m: ["model", "summary", "--input-size", "0"], 2, ["--input-size"]),
    "summary --depth 9": (lambda t, d, m: ["model", "summary", "--depth", "9"], 2, ["--depth"]),
    "summary --depth 6 --input-size 32": (lambda t, d, m: ["model", "summary", "--depth", "6", "--input-size", "32"], 2, ["--input-size"]),
    # fer runs
    "runs bogus flag": (lambda t, d, m: ["runs", "--bogus"], 2, ["--bogus"]),
}

#: cases that must succeed (exit 0) and say something specific on stdout
OK_CASES = {
    "runs empty store": (lambda t, d, m: ["runs"], []),
    "runs lists a corrupt config.json": (lambda t, d, m: (_fake_run(d, config="{not json"), ["runs"])[1], ["config.json"]),
    "runs lists a corrupt history.csv": (lambda t, d, m: (_fake_run(d, history="garbage\x00"), ["runs"])[1], ["history.csv"]),
    "train finished run: nothing trained": (lambda t, d, m: (_fake_run(d, 2, metrics={"evaluations": {"2": {}}}), ["train", "--data", str(d), *IMG, "--epochs", "2"])[1], ["nothing trained", "2 epochs"]),
}


def _call(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, report_tree, monkeypatch, capsys):
    check_case(CASES[name], tmp_path, report_tree, monkeypatch, capsys)


def check_case(case, tmp_path, report_tree, monkeypatch, capsys):
    """One corpus case (setup, exit code, words): the code, ONE line holding the words, no
    traceback, nothing under ``tmp_path`` changed. Shared by the other in-process corpora."""
    setup, code, words = case
    monkeypatch.delenv("FER_DEBUG", raising=False)
    argv = setup(tmp_path, report_tree, monkeypatch)
    before = _snapshot(tmp_path)
    rc, out, err = _call(argv, capsys)
    monkeypatch.undo()  # the full-disk patch must not hide a write in the snapshot below
    lines = err.strip().splitlines()
    assert "Traceback" not in err + out
    assert rc == code, (rc, err)
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert _snapshot(tmp_path) == before, "an input or foreign file changed, or a run was left behind"


@pytest.mark.parametrize("name", sorted(OK_CASES))
def test_good_answers(name, tmp_path, report_tree, monkeypatch, capsys):
    setup, words = OK_CASES[name]
    argv = setup(tmp_path, report_tree, monkeypatch)
    before = _snapshot(tmp_path)
    rc, out, err = _call(argv, capsys)
    assert rc == 0, err
    assert "Traceback" not in err + out
    for w in words:
        assert w in out, (w, out)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how, tmp_path, monkeypatch, capsys):
    argv = ["train", "--data", str(tmp_path / "nowhere"), *IMG, "--epochs", "1"]
    if how == "flag":
        argv.insert(0, "--debug")
    else:
        monkeypatch.setenv("FER_DEBUG", "1")
    rc, out, err = _call(argv, capsys)
    assert rc == 2
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("fer: error:")


def test_a_failed_job_exits_1(monkeypatch, capsys, report_tree):
    from fer_utils.data import datasets
    from fer_utils.errors import FerError

    class Failed(FerError):
        exit_code = 1

    def fail(*a, **k):
        raise Failed("notebooks/01.ipynb: cell 3 failed; see results/executed/01.ipynb")

    monkeypatch.setattr(datasets, "load", fail)
    rc, out, err = _call(["train", "--data", str(report_tree), *IMG, "--epochs", "1"], capsys)
    assert rc == 1 and err.strip() == "fer: error: notebooks/01.ipynb: cell 3 failed; see results/executed/01.ipynb"


def test_corpus_size():
    """The corpus covers every command of this file's scope (counted in the report)."""
    assert len(CASES) + len(OK_CASES) >= 30
