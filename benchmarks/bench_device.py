"""The trainer's two paths under JAX on this machine: ``model.fit`` per epoch against the device
path (``jit_epochs``: the whole epoch in one jitted call, fer_utils.training.device), the resnet
recipe on random faces, images/s of the third epoch (compiled, steady) of each, in one process.

    python benchmarks/bench_device.py [--batches 12] [--image-size 64]   # a GPU; on a 2-core CPU: --batches 4 --image-size 32

Runs itself under KERAS_BACKEND=jax (JAX_PLATFORMS as set: cpu here, gpu on a GPU machine).
Prints the CPU flags or the device, both rates, their ratio and a RESULT line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(batches: int, image_size: int) -> dict:
    import numpy as np

    from fer_utils.data.datasets import CLASS_NAMES, Dataset
    from fer_utils.training import backend
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import train_run

    cfg = RunConfig(data="random", model="resnet", image_size=image_size, epochs=3)
    n = batches * cfg.batch_size * 10 // 9 + 20
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, image_size, image_size, 3), dtype=np.uint8)
    y = rng.integers(0, 7, n)
    ds = Dataset(x, y, x[:64], y[:64], [], [], CLASS_NAMES, "random", "random", image_size, "random")
    out = {"where": backend.device_info()}
    with tempfile.TemporaryDirectory() as d:
        for path, jit in (("fit", False), ("device", True)):
            rows = train_run(Path(d) / path, cfg, ds, max_batches=batches, jit_epochs=jit, verbose=False, score_test=False)
            out[path] = batches * cfg.batch_size / rows[-1]["seconds"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("JSON" + json.dumps(measure(args.batches, args.image_size)))
        return
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, __file__, "--child", "--batches", str(args.batches), "--image-size", str(args.image_size)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-2000:])
    r = json.loads(proc.stdout.split("JSON", 1)[1])
    dev = r["where"]
    print(f"device {dev.get('device')} ({dev.get('device_name')}; {dev.get('cpu_flags') or ''})")
    print(f"fit: {r['fit']:.0f} images/s; device path: {r['device']:.0f} images/s; ratio {r['device'] / r['fit']:.2f}")
    print(f"RESULT fit_images_per_s={r['fit']:.0f} device_images_per_s={r['device']:.0f} ratio={r['device'] / r['fit']:.2f}")


if __name__ == "__main__":
    main()
