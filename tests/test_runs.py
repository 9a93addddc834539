"""fer_utils.training.rundir / runs: the run directory's files, the store's lookups, damaged runs.

No test here trains: runs are written by hand, as training would leave them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fer_utils.training import rundir
from fer_utils.training.config import RunConfig
from fer_utils.errors import RunStoreError
from fer_utils.training.store import RunStore, load_run

ROWS = [{"epoch": e, "loss": 1.5 / e, "accuracy": 0.1 * e, "val_loss": 1.6 / e, "val_accuracy": 0.09 * e, "seconds": 0.5} for e in (1, 2, 3)]


def _run(root: Path, seed=0, epochs=3, kept=(3,)) -> Path:
    cfg = RunConfig(data="f" * 64, image_size=24, batch_size=8, seed=seed)
    d = root / cfg.run_id
    rundir.write_config(d, cfg.to_dict())
    rundir.write_history(d, ROWS[:epochs])
    for e in kept:
        rundir.model_file(d, e).write_bytes(b"model")
    return d


def test_history_round_trip_is_exact(tmp_path):
    rundir.write_history(tmp_path, ROWS)
    assert rundir.read_history(tmp_path) == ROWS
    assert rundir.read_history(tmp_path / "none") == []


@pytest.mark.parametrize(
    "name,text",
    [
        ("history.csv", "epoch,loss\n1,x\n"),
        ("history.csv", "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,0.1,0.2,nan?,0.1,1\n"),
        ("history.csv", "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n2,0.1,0.2,0.3,0.1,1\n"),
        ("config.json", "{truncated"),
        ("config.json", "[1, 2]"),
        ("metrics.json", "\x00\x01"),
    ],
)
def test_a_damaged_file_is_one_line_naming_it_and_the_fix(tmp_path, name, text):
    d = _run(tmp_path)
    (d / name).write_text(text)
    before = sorted(p.name for p in d.iterdir())
    with pytest.raises(RunStoreError) as e:
        load_run(d)
    msg = str(e.value)
    assert "\n" not in msg and f"{d / name}" in msg and f"delete the run folder {d}" in msg
    assert sorted(p.name for p in d.iterdir()) == before  # never destroyed


def test_truncated_keras_file_is_one_line(tmp_path):
    d = _run(tmp_path)
    rundir.checkpoint_file(d).write_bytes(b"PK\x03\x04")
    with pytest.raises(RunStoreError, match=r"checkpoint\.keras: the checkpoint cannot be read .*delete the run folder"):
        rundir.load_keras(rundir.checkpoint_file(d), "checkpoint")


def test_store_lists_damaged_runs_as_such(tmp_path):
    good = _run(tmp_path, seed=0)
    bad = _run(tmp_path, seed=1)
    (bad / "history.csv").write_text("garbage")
    store = RunStore(tmp_path)
    with pytest.raises(RunStoreError):
        store.runs()
    listed = {r.id: r for r in store.runs(include_corrupt=True)}
    assert listed[good.name].problem is None and listed[good.name].epochs_done == 3
    assert "history.csv" in listed[bad.name].problem


def test_latest_is_the_run_with_the_newest_kept_model(tmp_path):
    store = RunStore(tmp_path / "runs")
    with pytest.raises(RunStoreError, match="no trained model"):
        store.latest()
    a = _run(store.root, seed=0)
    b = _run(store.root, seed=1, epochs=2, kept=(2,))
    past = time.time() - 100
    os.utime(rundir.model_file(b, 2), (past, past))
    assert store.latest().dir == a
    _run(store.root, seed=2, kept=())  # no kept model: never the latest
    (_run(store.root, seed=3) / "config.json").write_text("{")  # damaged: skipped
    os.utime(rundir.model_file(store.root / RunConfig(data="f" * 64, image_size=24, batch_size=8, seed=3).run_id, 3), (past, past))
    assert store.latest().model_path() == rundir.model_file(a, 3)


def test_model_path_names_the_kept_epochs(tmp_path):
    run = load_run(_run(tmp_path, kept=(1, 3)))
    assert run.kept_epochs() == [1, 3]
    assert run.model_path() == rundir.model_file(run.dir, 3)
    assert run.model_path(2) == rundir.model_file(run.dir, 2)  # the name, for callers that check
    with pytest.raises(RunStoreError, match=r"no model kept at epoch 2 \(kept: 1, 3; 3 epochs trained\)"):
        run.model_path(2, must_exist=True)
