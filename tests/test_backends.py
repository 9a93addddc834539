"""Same numbers on every engine: TensorFlow and JAX start identically and train alike.

Fast tests pin the backend-independent pieces in this process (TensorFlow): NumPy-drawn
initial weights, the counter-based augmentation draws against a NumPy twin, and the loss on a
confidently wrong face. The slow test trains one configuration under both backends in
subprocesses (benchmarks/_backend_worker.py) and asserts the stated tolerance.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_utils.models.augment import uniform_bits
from fer_utils.models.report_cnn import build_model, initial_weights, report_softmax, softmax_crossentropy

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "benchmarks" / "_backend_worker.py"

#: After 3 epochs at lr 0.001 (depth 2, 48 px, batch 64, synthetic set): the first epoch's loss
#: agrees to TOL_FIRST_LOSS (float rounding only; measured 2.5e-5 on 1,400 faces), every epoch's
#: losses to TOL_LOSS and accuracies to TOL_ACC (rounding differences grow with every step;
#: measured 2.4e-3 and 0.011 after 3 epochs, benchmarks/backends.json). The old
#: backend-specific weights and augmentation differed by 7.1e-3 in the first epoch's loss.
TOL_FIRST_LOSS, TOL_LOSS, TOL_ACC = 2e-4, 0.02, 0.05


def _np_mix(x):
    m = 0xFFFFFFFF
    x = x.astype(np.uint64)
    x ^= x >> 16
    x = (x * 0x7FEB352D) & m
    x ^= x >> 15
    x = (x * 0x846CA68B) & m
    x ^= x >> 16
    return x


def np_uniform_bits(seed, counter, n):
    """NumPy twin of :func:`fer_utils.models.augment.uniform_bits`."""
    key = _np_mix(_np_mix(np.array([seed ^ 0x9E3779B9], np.uint64)) ^ np.uint64(counter))
    idx = (np.arange(n, dtype=np.uint64) + 0x85EBCA6B) & 0xFFFFFFFF
    bits = _np_mix(_np_mix(idx) ^ key)
    return (bits >> 8).astype(np.float32) * np.float32(2.0**-24)


@pytest.mark.parametrize("seed,counter", [(0, 0), (12345, 7), (2**31 - 1, 100000)])
def test_augmentation_draws_are_a_pure_integer_function(seed, counter):
    ours = np.asarray(uniform_bits(seed, counter, 64))
    np.testing.assert_array_equal(ours, np_uniform_bits(seed, counter, 64))
    assert 0.0 <= ours.min() and ours.max() < 1.0 and 0.3 < ours.mean() < 0.7


def test_initial_weights_are_numpy_glorot_uniform():
    m = build_model(2, 32, seed=3, compile=False)
    again = build_model(2, 32, seed=3, compile=False)
    other = build_model(2, 32, seed=4, compile=False)
    for a, b in zip(m.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(m.get_weights()[0], other.get_weights()[0])
    dense = m.get_layer("dense").kernel.numpy()
    limit = math.sqrt(6 / sum(dense.shape))
    assert np.abs(dense).max() <= limit and np.abs(dense).max() > 0.99 * limit
    assert abs(dense.std() - limit / math.sqrt(3)) < 0.01 * limit  # uniform(-l, l) has std l/sqrt(3)
    assert not np.any(m.get_layer("conv1").bias.numpy())
    fresh = build_model(2, 32, compile=False)  # re-drawing by hand gives the same start
    initial_weights(fresh, 3)
    np.testing.assert_array_equal(fresh.get_layer("dense").kernel.numpy(), dense)


@pytest.mark.parametrize("gap", [40.0, 500.0])
def test_loss_of_a_confidently_wrong_face_is_the_from_logits_loss(gap):
    import tensorflow as tf

    logits = tf.constant([[gap, 0, 0, 0, 0, 0, 0]])
    y = tf.constant(np.eye(7, dtype="float32")[[3]])
    for softmax in (report_softmax, tf.nn.softmax):  # our output layer's, or any probabilities
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = softmax_crossentropy(y, softmax(logits))[0]
        grad = tape.gradient(loss, logits).numpy()[0]
        if softmax is tf.nn.softmax and gap > 87:  # no logits to find: floored at 1.2e-38
            assert float(loss) == pytest.approx(-math.log(1.1754944e-38), rel=1e-6)
            continue
        assert float(loss) == pytest.approx(gap, rel=1e-6)  # Keras' clipped loss says 16.12 under JAX
        np.testing.assert_allclose(grad, [1, 0, 0, -1, 0, 0, 0], atol=1e-6)  # p - y: never stuck


@pytest.mark.slow
def test_jax_loss_is_taken_from_the_logits():
    """Under JAX (no logits attribute on arrays) fit and evaluate still see the logits."""
    pytest.importorskip("jax")
    script = (
        "import numpy as np\n"
        "from fer_utils.models.report_cnn import build_model\n"
        "m = build_model(2, 32, 7, seed=0, augment=False)\n"
        "b = np.zeros(7, 'float32'); b[0] = 500.0; m.get_layer('predictions').bias.assign(b)\n"
        "x = np.zeros((4, 32, 32, 3), np.uint8); y = np.eye(7, dtype='float32')[[3] * 4]\n"
        "print('LOSS', m.evaluate(x, y, verbose=0)[0], m.fit(x, y, verbose=0).history['loss'][0])\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    losses = [float(v) for v in out.stdout.split("LOSS")[1].split()]
    assert losses == pytest.approx([500.0, 500.0], rel=1e-5)  # Keras' built-in loss: 16.12


def _train(backend, data, epochs=3):
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    args = {"task": "train", "data": str(data), "size": 48, "lr": 0.001, "seeds": [0], "epochs": epochs}
    out = subprocess.run([sys.executable, str(WORKER), json.dumps(args)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(l[7:]) for l in out.stdout.splitlines() if l.startswith("RESULT ")][0]


@pytest.mark.slow
def test_tensorflow_and_jax_train_alike(tmp_path):
    pytest.importorskip("jax")
    from fer_utils.data import synthetic

    data = tmp_path / "syn"
    synthetic.generate(data, n_train=420, n_test=140, n_unlabelled=0, seed=0, progress=False)
    tf_run, jax_run = _train("tensorflow", data), _train("jax", data)
    assert jax_run["matmul_precision"] == "highest"
    a, b = np.asarray(tf_run["history"]), np.asarray(jax_run["history"])  # loss, accuracy, val_loss, val_accuracy
    assert a.shape == b.shape == (3, 4)
    assert abs(a[0, 0] - b[0, 0]) < TOL_FIRST_LOSS, (a[:, 0], b[:, 0])
    np.testing.assert_allclose(a[:, [0, 2]], b[:, [0, 2]], atol=TOL_LOSS)
    np.testing.assert_allclose(a[:, [1, 3]], b[:, [1, 3]], atol=TOL_ACC)
    assert a[-1, 0] < a[0, 0]  # and it learned something
