"""One resnet training-throughput measurement in a fresh process; run by bench_resnet.py.

Usage: python benchmarks/_resnet_worker.py '<json>' ; prints ``WORKER {json}`` last.

json keys: size, batch, warmup, steps; determinism (default true, as train_run), jit (Keras
``jit_compile``: true/false/"auto"), mixed (a dtype policy such as "mixed_bfloat16"),
augment (default true), mix_prob (MixUp/CutMix share; default the recipe's).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _benchlib as bl  # noqa: E402


def main() -> None:
    a = json.loads(sys.argv[1])
    size, batch = int(a.get("size", 64)), int(a.get("batch", 128))
    warmup, steps = int(a.get("warmup", 3)), int(a.get("steps", 12))
    from fer_utils.training import backend

    backend.configure_performance()  # as every training process does, before Keras loads
    import keras
    import numpy as np

    if a.get("determinism", True):
        backend.make_deterministic()
    if a.get("mixed"):
        keras.mixed_precision.set_dtype_policy(a["mixed"])
    from fer_utils.data.datasets import CLASS_NAMES
    from fer_utils.models import resnet
    from fer_utils.models.registry import train_flops
    from fer_utils.training.config import RunConfig
    from fer_utils.training.recipes import mixed_batches

    cfg = RunConfig(data="random", model="resnet", image_size=size, batch_size=batch, epochs=2)
    if "mix_prob" in a:
        cfg = cfg.replace(mix_prob=float(a["mix_prob"]))
    n = (warmup + steps) * batch
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, 7, n)
    model = resnet.build_resnet(cfg, 7, class_names=CLASS_NAMES, augment=a.get("augment", True))
    model.compile(optimizer=resnet.optimizer(cfg, warmup + steps), metrics=["accuracy"], jit_compile=a.get("jit", "auto"),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing))
    batches = mixed_batches(x, y, np.ones(7, np.float32), batch, 7, None, cfg.mix_prob, 0)
    timer = bl.batch_timer()
    t0 = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0, callbacks=[timer])
    out = {"args": a, "backend": backend.name(), "onednn": backend.onednn_enabled(), "policy": keras.mixed_precision.dtype_policy().name,
           "train_flops_per_image": train_flops(cfg), "total_s": time.perf_counter() - t0,
           **bl.throughput(timer, warmup, batch), "final_loss": float(model.history.history["loss"][-1])}
    print("WORKER " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
