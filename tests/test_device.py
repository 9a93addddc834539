"""fer_utils.training.device: the trainer's fast path under JAX (a whole epoch in one jitted call)
sees the fit path's batches and draws, so both give the same history to float rounding, and it
keeps the resume contract: killed after an epoch and resumed, it trains the uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_device_path_needs_jax(monkeypatch):
    import keras

    from fer_utils.errors import ConfigError
    from fer_utils.training.device import check_available

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs JAX")
    with pytest.raises(ConfigError, match="--jit-epochs: needs the JAX backend"):
        check_available()


@pytest.mark.slow
def test_device_epochs_match_fit_and_resume_exactly(tmp_path):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "_device_worker.py"), str(tmp_path), str(ROOT / "tests")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.split("JSON", 1)[1])
    for name in ("resnet", "cnn"):  # the resnet mixes batches; the CNN's batch 16 leaves a last, smaller one
        fit, jit, resumed = res[name]["fit"], res[name]["jit"], res[name]["resumed"]
        assert resumed == jit  # the resume contract, byte for byte
        assert [r["epoch"] for r in jit] == [1, 2, 3]
        for a, b in zip(fit, jit):
            for col in ("loss", "val_loss"):
                assert b[col] == pytest.approx(a[col], rel=1e-4), (name, col)
            assert b["accuracy"] == pytest.approx(a["accuracy"], abs=1e-6)
        assert res[name]["where"].startswith("device")
