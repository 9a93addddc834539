"""fer_utils.training.trainer / runs: determinism, epoch-prefix reuse, resume after a kill, JAX backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fer_utils.data import datasets
from fer_utils.training.config import RunConfig
from fer_utils.training.store import RunStore
from fer_utils.training.trainer import read_history, train_run

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


@pytest.fixture
def tiny(report_tree):
    return datasets.load(report_tree, image_size=24, verbose=False)


def _cfg(ds, **kw):
    return RunConfig(data=ds.fingerprint, image_size=24, batch_size=8, **kw)


def _metrics(rows):
    return [tuple(r[m] for m in METRICS) for r in rows]


@pytest.mark.slow
def test_same_seed_same_history_and_final_row(tiny, tmp_path):
    a = train_run(tmp_path / "a", _cfg(tiny), tiny, 2, verbose=False)
    b = train_run(tmp_path / "b", _cfg(tiny), tiny, 2, verbose=False)
    assert _metrics(a) == _metrics(b)
    c = train_run(tmp_path / "c", _cfg(tiny, seed=1), tiny, 2, verbose=False)
    assert _metrics(a) != _metrics(c)


@pytest.mark.slow
def test_prefix_of_a_longer_run_is_the_shorter_run(tiny, tmp_path):
    short = train_run(tmp_path / "two", _cfg(tiny), tiny, 2, verbose=False)
    long = train_run(tmp_path / "four", _cfg(tiny), tiny, 4, verbose=False)
    assert len(long) == 4
    assert _metrics(long[:2]) == _metrics(short)


@pytest.mark.slow
def test_store_reuses_epochs_and_continues(tiny, tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    cfg = _cfg(tiny)
    store.ensure(cfg, 2, tiny, verbose=True)
    assert capsys.readouterr().out.count("epoch ") == 2
    run = store.ensure(cfg, 1, tiny, verbose=True)  # fewer epochs: costs nothing
    assert capsys.readouterr().out.count("epoch ") == 0 and run.epochs_done == 2
    run = store.ensure(cfg, 3, tiny, verbose=True)  # more: continues at epoch 3
    out = capsys.readouterr().out
    assert "resuming at epoch 3" in out and out.count("epoch 3/3") == 1
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    assert run.evaluation(3)["test"]["n"] == len(tiny.y_test)
    assert run.row(2)["Discrepancy"] == pytest.approx(run.history[1]["accuracy"] - run.history[1]["val_accuracy"])


def test_run_id_ignores_epochs_and_depends_on_the_rest(tiny):
    a = _cfg(tiny)
    assert a.run_id == _cfg(tiny).run_id
    assert len({a.run_id, _cfg(tiny, lr=0.01).run_id, _cfg(tiny, seed=2).run_id, _cfg(tiny, selection="holdout").run_id}) == 4


@pytest.mark.slow
def test_holdout_validates_on_train_and_tests_once(tiny, tmp_path):
    cfg = _cfg(tiny, selection="holdout", val_fraction=0.25)
    store = RunStore(tmp_path / "runs")
    run = store.ensure(cfg, 1, tiny, verbose=False)
    ev = run.evaluation(1)
    assert ev["test"]["n"] == len(tiny.y_test)
    assert len(ev["test"]["confusion"]) == 7
    # validation is a held-out quarter of TRAIN, not the test split (selection="test" fails this)
    from fer_utils.training.trainer import split_for

    x_tr, y_tr, x_val, y_val, x_te, y_te = split_for(cfg, tiny)
    assert len(y_val) == round(0.25 * len(tiny.y_train)) != len(tiny.y_test)
    assert len(y_tr) + len(y_val) == len(tiny.y_train) and len(y_te) == len(tiny.y_test)
    train_rows = {x.tobytes() for x in tiny.x_train}
    assert all(x.tobytes() in train_rows for x in x_val)
    assert not {x.tobytes() for x in x_val} & {x.tobytes() for x in tiny.x_test}


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from fer_utils.data import datasets
    from fer_utils import paths
    paths.CACHE_DIR = {cache!r}
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import train_run
    ds = datasets.load({data!r}, image_size=24, verbose=False)
    cfg = RunConfig(data=ds.fingerprint, image_size=24, batch_size=8)
    train_run({run!r}, cfg, ds, 30)
    """
)


@pytest.mark.slow
def test_killed_run_resumes_without_gap_or_duplicate(report_tree, tmp_path):

    cache = str(tmp_path / "_cache")
    run_dir = tmp_path / "killed"
    script = KILL_SCRIPT.format(tests=str(ROOT / "tests"), cache=cache, data=str(report_tree), run=str(run_dir))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and len(read_history(run_dir)) < 2:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-run: epochs keep coming, no warning
    finally:
        proc.wait()
    done = len(read_history(run_dir))
    assert 2 <= done < 30
    ds = datasets.load(report_tree, image_size=24, verbose=False)
    target = done + 2
    rows = train_run(run_dir, _cfg(ds), ds, target, verbose=False)
    assert [r["epoch"] for r in rows] == list(range(1, target + 1))
    reference = train_run(tmp_path / "uninterrupted", _cfg(ds), ds, target, verbose=False)
    assert _metrics(rows) == _metrics(reference)  # resumed exactly where it stopped


def test_data_mismatch_is_refused(tiny, tmp_path):
    from fer_utils.errors import ConfigError

    with pytest.raises(ConfigError, match="data"):
        train_run(tmp_path / "x", RunConfig(data="0" * 64, image_size=24), tiny, 1, verbose=False)


JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from pathlib import Path
    from conftest import write_report_layout
    from fer_utils.data import datasets
    from fer_utils import paths
    paths.CACHE_DIR = Path({tmp!r}) / "cache"
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import train_run
    root = write_report_layout(Path({tmp!r}) / "ds")
    ds = datasets.load(root, image_size=24, verbose=False)
    cfg = RunConfig(data=ds.fingerprint, image_size=24, batch_size=8)
    a = train_run(Path({tmp!r}) / "r1", cfg, ds, 2, verbose=True)
    b = train_run(Path({tmp!r}) / "r2", cfg, ds, 2, verbose=False)
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    import json
    prov = json.loads((Path({tmp!r}) / "r1" / "metrics.json").read_text())["evaluations"]["2"]["trained_with"]
    assert prov["backend"] == "jax" and prov["device"] == "cpu" and prov["matmul_precision"], prov
    print("JAX-OK", a[-1]["val_accuracy"])
    """
)


@pytest.mark.slow
def test_smoke_training_under_jax(tmp_path):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT.format(tests=str(ROOT / "tests"), tmp=str(tmp_path))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "JAX-OK" in out.stdout


def test_provenance_names_backend_device_and_matmul_precision():
    from fer_utils.training.provenance import trained_with

    info = trained_with()
    assert info["backend"] in ("tensorflow", "jax")
    assert info["device"] in ("cpu", "gpu") and info["device_name"]
    assert info["matmul_precision"] in ("float32", "tf32", "default", "highest", "high", "float32", "bfloat16", "tensorfloat32")
    assert len(info["commit"].split()[0]) == 40 or info["commit"].startswith("unknown")
    if info["device"] == "cpu" and Path("/proc/cpuinfo").exists():
        assert isinstance(info["cpu_flags"], str)


def test_cpu_flags_are_the_kernel_choosing_ones_in_a_fixed_order(tmp_path):
    from fer_utils.training.backend import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse2 amx_tile avx2 avx512_bf16 avx512f sha_ni\n")
    assert cpu_flags(info) == "avx2 avx512f avx512_bf16 amx_tile"
    info.write_text("flags\t\t: fpu sse2\n")
    assert cpu_flags(info) == ""
    assert cpu_flags(tmp_path / "missing") is None


def test_a_failed_first_epoch_leaves_no_run(tiny, tmp_path, monkeypatch):
    """A run folder that this call created is removed when no epoch finished; its parents too
    when they are empty; an existing folder is never touched."""
    from fer_utils.models import report_cnn as model_mod

    def boom(*a, **k):
        raise RuntimeError("no memory")

    monkeypatch.setattr(model_mod, "build_model", boom)
    with pytest.raises(RuntimeError):
        train_run(tmp_path / "store" / "run", _cfg(tiny), tiny, 1, verbose=False)
    assert not (tmp_path / "store").exists()
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        train_run(keep, _cfg(tiny), tiny, 1, verbose=False)
    assert (keep / "notes.txt").read_text() == "mine"



class _Killed(BaseException):
    """Stands for SIGKILL at one exact instant (a BaseException: nothing on the way catches it)."""


def _kill(*args, **kwargs):
    raise _Killed


@pytest.mark.slow
@pytest.mark.parametrize("step", ["write_history", "commit_checkpoint"])
def test_a_kill_between_the_steps_of_an_epoch_end_resumes_exactly(tiny, tmp_path, monkeypatch, step):
    """Killed after epoch 2's next checkpoint and before its history row (write_history), or
    after the row and before the commit (commit_checkpoint): epoch 2 is neither lost nor
    trained twice on top of itself."""
    from fer_utils.training import rundir

    reference = train_run(tmp_path / "whole", _cfg(tiny), tiny, 3, verbose=False)
    run_dir = tmp_path / "killed"
    train_run(run_dir, _cfg(tiny), tiny, 1, verbose=False)
    monkeypatch.setattr(rundir, step, _kill)
    with pytest.raises(_Killed):
        train_run(run_dir, _cfg(tiny), tiny, 3, verbose=False)
    monkeypatch.undo()
    assert (run_dir / rundir.NEXT_CHECKPOINT).exists()
    assert len(read_history(run_dir)) == (1 if step == "write_history" else 2)
    rows = train_run(run_dir, _cfg(tiny), tiny, 3, verbose=False)
    assert _metrics(rows) == _metrics(reference)
    assert not (run_dir / rundir.NEXT_CHECKPOINT).exists()


def test_test_loss_comes_from_the_logits_not_clipped_probabilities():
    """A confidently wrong model: every face called class 0 by a margin of 100 logits. Its
    cross-entropy is about 100 per face; clipping the probabilities at 1e-7 would say 16.1."""
    import numpy as np

    from fer_utils.models.report_cnn import build_model
    from fer_utils.training.scoring import evaluate

    model = build_model(2, 24, 7, seed=0)
    head = model.get_layer("predictions")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    head.bias.assign(np.array([100.0, 0, 0, 0, 0, 0, 0], "float32"))
    x = np.random.default_rng(0).integers(0, 256, (10, 24, 24, 3), dtype=np.uint8)
    y = np.array([0] * 4 + [3] * 6)
    r = evaluate(model, x, y, [f"c{i}" for i in range(7)])
    assert r["accuracy"] == pytest.approx(0.4) and r["confusion"][3][0] == 6
    assert r["loss"] == pytest.approx(0.6 * (100 + np.log1p(6 * np.exp(-100.0))) + 0.4 * np.log1p(6 * np.exp(-100.0)), rel=1e-6)
