"""One backend's side of benchmarks/bench_backends.py and tests/test_backends.py (run in a
subprocess with ``KERAS_BACKEND`` set; prints one JSON line per measurement, prefixed ``RESULT``).

Argument: one JSON object. ``task``:

* ``train``: ``train_run`` on ``data`` (a folder the loader reads) for each seed; returns the
  history rows and the test predictions' class counts. ``legacy`` lists the old, backend-specific
  behaviours to switch back on, to measure what each one did: ``init`` (Keras' initializers,
  each backend's RNG), ``rng`` (augmentation draws from ``keras.random``), ``loss`` (Keras'
  built-in ``categorical_crossentropy``).
* ``probe``: initial weights (saved to ``out``), one augmentation batch, and the loss and its
  gradient on a saturated, confidently wrong output under the built-in loss and ours.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def _precision(a):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        from fer_utils.training import backend

        backend.make_deterministic()  # what train_run does: sets the matmul precision
        if a.get("precision"):
            jax.config.update("jax_default_matmul_precision", a["precision"])
        return {"device": jax.devices()[0].device_kind, "matmul_precision": str(jax.config.jax_default_matmul_precision)}
    return {"device": "CPU", "matmul_precision": "float32"}


def _legacy(parts):
    """Switch old behaviours back on (module attributes that build_model/the layer look up)."""
    import keras

    from fer_utils.models import augment

    from fer_utils.models import report_cnn as model

    if "init" in parts:
        model.initial_weights = lambda m, seed: None
    if "loss" in parts:
        model.softmax_crossentropy = "categorical_crossentropy"
    if "rng" in parts:
        def keras_uniform(seed, counter, n):  # the backend's own stateless generator, as keras.random draws
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                return tf.random.stateless_uniform(tf.reshape(n, [1]), seed=tf.cast(tf.stack([seed, counter]), "int64"))
            s = keras.ops.cast(keras.ops.stack([seed, counter]), "uint32")
            return keras.random.uniform((n,), seed=s)
        augment.uniform_bits = keras_uniform


def train(a):
    import keras

    from fer_utils.data import datasets
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import train_run

    ds = datasets.load(a["data"], image_size=a["size"], verbose=False, progress=False)
    for seed in a["seeds"]:
        cfg = RunConfig(data=ds.fingerprint, image_size=a["size"], batch_size=a.get("batch", 64), lr=a["lr"],
                        depth=a.get("depth", 2), seed=seed, augment=a.get("augment", True))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            rows = train_run(d, cfg, ds, a["epochs"], verbose=False)
            m = keras.saving.load_model(os.path.join(d, "checkpoint.keras"))
            p = np.asarray(m.predict(ds.x_test, batch_size=256, verbose=0))
        yield {"seed": seed, "lr": a["lr"], "history": [[r[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy")] for r in rows],
               "predicted_classes": np.bincount(p.argmax(1), minlength=ds.num_classes).tolist(),
               "seconds": round(time.perf_counter() - t0, 1)}


def probe(a):
    import keras
    from keras import ops

    from fer_utils.models.report_cnn import augmentation_layer, build_model

    softmax_crossentropy = OUR_LOSS  # the module attribute may be switched to the legacy loss

    m = build_model(a.get("depth", 2), a["size"], 7, seed=a.get("seed", 0))
    np.savez(a["out"], *m.get_weights())
    aug = augmentation_layer(m)
    aug.reseed(12345)
    x = np.random.default_rng(0).random((8, a["size"], a["size"], 3)).astype("float32")
    np.save(a["out"].replace(".npz", "-aug.npy"), np.asarray(aug(x, training=True)))
    # A confidently wrong face: the true class's logit trails the predicted one's by 200.
    logits = np.array([[200.0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 2.0, 0, 0, 0]], "float32")
    y = np.eye(7, dtype="float32")[[3, 3]]
    out = {}
    from fer_utils.models.report_cnn import report_softmax

    for name, fn, act in (("keras", keras.losses.CategoricalCrossentropy(), keras.activations.softmax),
                          ("ours", lambda t, p: ops.mean(softmax_crossentropy(t, p)), report_softmax)):
        val, grad = _loss_and_grad(fn, act, y, logits)  # traced, as model.fit runs the loss
        out[name] = {"loss": float(val), "grad_wrt_logits_row0": [round(float(g), 6) for g in grad[0]]}
    out["exact_from_logits"] = float(np.mean([np.log(np.exp(l - l.max()).sum()) + l.max() - l[3] for l in logits.astype("float64")]))
    opt = keras.optimizers.Adam()
    out["adam"] = {"epsilon": float(opt.epsilon), "beta_1": float(opt.beta_1), "beta_2": float(opt.beta_2)}
    out["backend_epsilon"] = keras.config.epsilon()
    yield out


def _loss_and_grad(fn, act, y, logits):
    """Loss of softmax(logits) and its gradient w.r.t. the logits, traced like a train step."""
    import keras
    from keras import ops

    if keras.backend.backend() == "jax":
        import jax

        f = jax.jit(jax.value_and_grad(lambda z: fn(y, act(z))))
        v, g = f(logits)
        return np.asarray(v), np.asarray(g)
    import tensorflow as tf

    @tf.function
    def f(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            v = fn(y, act(z))  # the output layer's softmax activation
        return v, tape.gradient(v, z)

    v, g = f(tf.constant(logits))
    return v.numpy(), g.numpy()


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    info = _precision(args)
    from fer_utils.models.report_cnn import softmax_crossentropy as OUR_LOSS

    _legacy(args.get("legacy", ()))
    import keras

    for res in {"train": train, "probe": probe}[args["task"]](args):
        print("RESULT " + json.dumps({"backend": keras.backend.backend(), **info, "legacy": sorted(args.get("legacy", ())), **res}), flush=True)
