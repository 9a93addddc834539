"""One training-throughput (or memory) measurement in a fresh process; run by bench_train.py.

Usage: python benchmarks/_train_worker.py '<json>' ; prints ``WORKER {json}`` last.

json keys: pipeline ("report" | "project" | "memory"), depths, batch, warmup, steps,
jpeg_dir (report), determinism (project; default true as in train_run), jit, workers,
threads [intra, inter], mixed (policy name), configure (call backend.configure_performance()).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _benchlib as bl  # noqa: E402


def report_model(depth, size, lr=1e-3, jit="auto"):
    """The report's model: float32 input in [0, 1] (its generator rescales and augments), then
    the very conv stack of ``build_model(depth, size, augment=False)``."""
    import keras

    from fer_utils.models.report_cnn import build_model

    base = build_model(depth, size, augment=False, compile=False, seed=0)
    inp = keras.Input((size, size, 3), dtype="float32", name="image")
    x = inp
    for layer in base.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name == "rescale":
            continue
        x = layer(x)
    m = keras.Model(inp, x)
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=jit)
    return m


def main() -> None:
    a = json.loads(sys.argv[1])
    pipeline = a["pipeline"]
    batch, warmup, steps = int(a.get("batch", 64)), int(a.get("warmup", 4)), int(a.get("steps", 20))
    size = int(a.get("size", 128))
    t_start = time.perf_counter()
    from fer_utils.training import backend

    if a.get("configure"):
        backend.configure_performance()  # before Keras/TensorFlow is imported
    import keras
    if a.get("threads"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(a["threads"][0]))
        tf.config.threading.set_inter_op_parallelism_threads(int(a["threads"][1]))
    if a.get("mixed"):
        keras.mixed_precision.set_dtype_policy(a["mixed"])
    jit = a.get("jit", "auto")
    out = {"args": a, "backend": backend.name(), "onednn": backend.onednn_enabled(), "results": {}}

    if pipeline == "report":
        from keras.src.legacy.preprocessing.image import ImageDataGenerator

        gen = ImageDataGenerator(rescale=1.0 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
        for depth in a["depths"]:
            it = gen.flow_from_directory(a["jpeg_dir"], target_size=(size, size), batch_size=batch, class_mode="categorical", seed=0)
            assert len(it) >= warmup + steps, f"subset too small: {len(it)} batches < {warmup + steps}"
            model = report_model(depth, size, jit=jit)
            timer = bl.batch_timer()
            model.fit(it, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer])
            out["results"][str(depth)] = bl.throughput(timer, warmup, batch)
            print(depth, out["results"][str(depth)], flush=True)
    else:
        from fer_utils.models.report_cnn import build_model
        from fer_utils.training.scoring import ordered_batches as _batches

        t0 = time.perf_counter()
        ds = bl.load_raf(size=size)
        out["load_s"] = time.perf_counter() - t0
        if a.get("determinism", True):
            backend.make_deterministic()  # as train_run does
        if pipeline == "memory":
            from fer_utils.training.config import RunConfig  # noqa: F401  train_run's own split

            x_tr, y_tr, x_val, y_val = ds.x_train, ds.y_train, ds.x_test, ds.y_test
        else:
            x_tr, y_tr = ds.x_train, ds.y_train
        import numpy as np

        workers = int(a.get("workers", 1))
        for depth in a["depths"]:
            model = build_model(depth, size, ds.num_classes, lr=1e-3, class_names=ds.class_names, seed=0, augment=bool(a.get("augment", True)))
            if jit != "auto":
                model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=jit)
            order = np.random.default_rng(0).permutation(len(y_tr))
            data = _batches(x_tr, y_tr, batch, ds.num_classes, order)
            if workers > 1:
                data.workers = workers  # PyDataset: threads prefetch batches
            timer = bl.batch_timer()
            kw = {}
            if pipeline == "memory":
                kw = dict(validation_data=_batches(x_val, y_val, max(batch, 256), ds.num_classes), validation_steps=int(a.get("val_steps", 4)))
            model.fit(data, steps_per_epoch=warmup + steps, epochs=1, verbose=0, shuffle=False, callbacks=[timer], **kw)
            out["results"][str(depth)] = bl.throughput(timer, warmup, batch)
            print(depth, out["results"][str(depth)], flush=True)
    out["self_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["total_s"] = time.perf_counter() - t_start
    print("WORKER " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
