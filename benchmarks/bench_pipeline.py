"""Data-pipeline throughput alone (decode + augment, images/s): the report's generator vs ours,
against the training throughput it has to feed.

Usage: python benchmarks/bench_pipeline.py [PATH] [--batches 12] [--train-img-s X]

* report: ``ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2,
  horizontal_flip=True).flow_from_directory(...)`` over a JPEG subset of RAF-DB train written to
  /tmp (original bytes), one batch after another in one thread, as ``model.fit`` consumed it
  in the report (JPEG decode + NEAREST resize + scipy affine per image, every epoch).
* ours, steady state (every epoch): a uint8 batch gathered from memory by the trainer's
  ``_batches`` PyDataset, then the model's own first layers (Rescaling + ReportAugmentation)
  in training mode, compiled as in the training step.
* ours, once per data set: the decode of ``datasets.load`` (first load into a fresh /tmp
  cache: zip read + JPEG decode + NEAREST resize of train and test).
* training: the project's training throughput at depth 2 (the fastest depth, so the most
  demanding consumer), measured in a subprocess unless ``--train-img-s`` gives it.

Target (issue "Performance"): our pipeline at 5x the training throughput or more.
Ends with one line ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import _benchlib as bl  # noqa: E402


def rate(f, n_batches, batch):
    f(0)  # warm-up (graph tracing, first file reads)
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(1, n_batches + 1):
        f(i)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return {"img_s": n_batches * batch / w, "img_per_cpu_s": n_batches * batch / c, "cpu_util": c / w}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", default=str(bl.DEFAULT_DATA))
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train-img-s", type=float, default=None, help="skip the training measurement, use this")
    args = ap.parse_args()
    if not Path(args.path).exists():
        print(f"SKIP: {args.path} is absent")
        print("RESULT report_pipeline_img_s=nan ours_pipeline_img_s=nan")
        return
    m = bl.machine()
    print(f"machine: {m}")
    B, size = args.batch, args.size
    from fer_utils.training import backend

    backend.configure_performance()  # as the project's entry points do (before Keras loads)
    tmp = Path(tempfile.mkdtemp(prefix="fer-bench-pipe-"))
    try:
        # 1. decode cost of datasets.load (fresh cache in /tmp)
        from fer_utils.data import datasets
        from fer_utils import paths

        paths.CACHE_DIR = tmp / "cache"
        t0, c0 = time.perf_counter(), time.process_time()
        ds = datasets.load(args.path, size, progress=False, verbose=False)
        w, c = time.perf_counter() - t0, time.process_time() - c0
        n_all = len(ds.y_train) + len(ds.y_test)
        decode = {"img_s": n_all / w, "img_per_cpu_s": n_all / c, "cpu_util": c / w, "n": n_all, "secs": w}
        print(f"ours, decode once (datasets.load first load, {n_all} images): {decode['img_s']:.0f} img/s "
              f"({decode['img_per_cpu_s']:.0f} img per CPU-s)")
        bl.cleanup(tmp / "cache")

        # 2. the report's generator
        n_img = (args.batches + 1) * B
        train_dir = bl.write_jpeg_subset(ds, n_img, tmp / "jpeg")
        from keras.src.legacy.preprocessing.image import ImageDataGenerator

        gen = ImageDataGenerator(rescale=1.0 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
        it = gen.flow_from_directory(str(train_dir), target_size=(size, size), batch_size=B, class_mode="categorical", seed=0)
        report = rate(lambda i: it[i], args.batches, B)
        print(f"report generator (decode + resize + scipy affine + rescale, 1 thread): {report['img_s']:.0f} img/s "
              f"({report['img_per_cpu_s']:.0f} img per CPU-s)")

        # 3. ours: gather from memory + augmentation layer in training mode
        import keras

        from fer_utils.training import backend
        from fer_utils.models.augment import ReportAugmentation
        from fer_utils.training.scoring import ordered_batches as _batches

        order = np.random.default_rng(0).permutation(len(ds.y_train))
        data = _batches(ds.x_train, ds.y_train, B, ds.num_classes, order)
        fetch = rate(lambda i: data[i], args.batches * 4, B)
        inp = keras.Input((size, size, 3), dtype="uint8")
        aug_model = keras.Model(inp, ReportAugmentation(seed=0)(keras.layers.Rescaling(1.0 / 255)(inp)))
        if backend.name() == "tensorflow":
            import tensorflow as tf

            step = tf.function(lambda x: aug_model(x, training=True))
        else:
            import jax

            step = jax.jit(lambda x: aug_model(x, training=True))
        batches = [data[i][0] for i in range(args.batches + 1)]
        aug = rate(lambda i: keras.ops.convert_to_numpy(step(batches[i])), args.batches, B)
        ours = 1.0 / (1.0 / fetch["img_s"] + 1.0 / aug["img_s"])
        ours_cpu = 1.0 / (1.0 / fetch["img_per_cpu_s"] + 1.0 / aug["img_per_cpu_s"])
        print(f"ours, gather a uint8 batch from memory (_batches): {fetch['img_s']:.0f} img/s")
        print(f"ours, Rescaling + ReportAugmentation (training=True, compiled): {aug['img_s']:.0f} img/s "
              f"({aug['img_per_cpu_s']:.0f} img per CPU-s)")
        print(f"ours, steady-state pipeline (gather + augment, every epoch): {ours:.0f} img/s")

        # 4. the training throughput it feeds
        if args.train_img_s:
            train = {"img_s": args.train_img_s, "img_per_cpu_s": float("nan")}
        else:
            r = bl.run_worker("_train_worker.py", {"pipeline": "project", "depths": [2], "warmup": 3, "steps": 12, "configure": True})
            train = r["results"]["2"]
        print(f"training (project, depth 2, batch {B}): {train['img_s']:.0f} img/s ({train['img_per_cpu_s']:.0f} img per CPU-s)")
        x_ours = ours / train["img_s"]
        x_ours_cpu = ours_cpu / train["img_per_cpu_s"]
        x_report = report["img_s"] / train["img_s"]
        x_decode = decode["img_s"] / train["img_s"]
        print(f"ours / training: {x_ours:.1f}x wall ({x_ours_cpu:.1f}x per CPU-s; target 5x); "
              f"decode once / training: {x_decode:.1f}x; report generator / training: {x_report:.1f}x")
        res = {
            "report_pipeline_img_s": report["img_s"],
            "ours_pipeline_img_s": ours,
            "ours_augment_img_s": aug["img_s"],
            "ours_gather_img_s": fetch["img_s"],
            "ours_decode_once_img_s": decode["img_s"],
            "train_img_s": train["img_s"],
            "ours_over_train": x_ours,
            "ours_over_train_cpu": x_ours_cpu,
            "decode_over_train": x_decode,
            "report_over_train": x_report,
            "ours_over_report": ours / report["img_s"],
            "loadavg1": os.getloadavg()[0],
        }
        print("JSON " + json.dumps(res))
        print("RESULT " + " ".join(f"{k}={v:.4g}" for k, v in res.items()))
    finally:
        bl.cleanup(tmp)


if __name__ == "__main__":
    main()
