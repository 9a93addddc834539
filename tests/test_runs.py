"""fer_utils.rundir / runs: the run directory's files, the store's lookups, damaged runs.

No test here trains: runs are written by hand, as training would leave them.
"""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path

import pytest

from fer_utils import rundir
from fer_utils.config import RunConfig
from fer_utils.errors import RunStoreError
from fer_utils.runs import RunStore, load_run

PKG = Path(__file__).resolve().parents[1] / "fer_utils"
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


def _imports(module: str) -> set[str]:
    """fer_utils modules imported by ``module``, imports inside functions included."""
    tree = ast.parse((PKG / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fer_utils."):
            out.add(node.module.split(".")[1])
    return {m for m in out if (PKG / f"{m}.py").exists()}


def test_the_run_layers_import_only_downward():
    """rundir (the files) <- train (trains through rundir) <- runs (the store); no circle."""
    assert not _imports("rundir") & {"train", "runs", "cli", "experiments"}
    assert "runs" not in _imports("train") and "rundir" in _imports("train")
    assert "train" in _imports("runs")
    for low in ("atomic", "errors", "paths", "progress", "backend", "rundir"):
        assert not _imports(low) & {"train", "runs", "cli", "model", "datasets", "experiments"}, low
    # no library module imports the CLI
    assert not [p.stem for p in PKG.glob("*.py") if p.stem != "cli" and "cli" in _imports(p.stem)]


def test_no_module_outside_rundir_names_the_run_files():
    """The run directory's file names live in rundir.py only (runs, train, cli ask it)."""
    for mod in ("train", "runs", "cli"):
        text = (PKG / f"{mod}.py").read_text()
        for name in ('"history.csv"', '"checkpoint.keras"', '"metrics.json"', 'model-e{'):
            assert name not in text, (mod, name)


def test_the_package_is_what_the_readme_says():
    """The README's package section: every module in its table, each under 500 lines, and the
    imports (inside functions too) form no cycle."""
    readme = (PKG.parent / "README.md").read_text()
    section = readme.split("## The package", 1)[1].split("\n## ", 1)[0]
    modules = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")
    assert [m for m in modules if f"`fer_utils.{m}`" not in section and f"/ `{m}`" not in section] == []
    assert {m: n for m in modules if (n := len((PKG / f"{m}.py").read_text().splitlines())) >= 500} == {}
    graph = {m: _imports(m) - {m} for m in modules}
    done, path = set(), []

    def visit(m):
        assert m not in path, " -> ".join(path[path.index(m):] + [m])
        if m in done:
            return
        path.append(m)
        for n in sorted(graph[m]):
            visit(n)
        path.pop()
        done.add(m)

    for m in modules:
        visit(m)
