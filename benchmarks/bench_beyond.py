"""Training speed of the beyond recipe on this machine (the `beyond` profile's CPU budget).

    python benchmarks/bench_beyond.py [--batches 12] [--image-size 64]

Trains the default resnet recipe (the one trainer, fer_utils.training.trainer) for 2 epochs of ``--batches`` batches on random faces (speed
does not depend on the pixels), takes the second epoch (compiled, steady) and extrapolates:
RAF-DB's 11,044 training faces (12,271 less the 10% holdout) per epoch. Last line: RESULT.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_utils.training import backend  # noqa: E402

backend.quiet()

import numpy as np  # noqa: E402

RAF_TRAIN_AFTER_HOLDOUT = 11044


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--epochs-budget", type=int, default=60, help="epochs to extrapolate to (default: the config's 60)")
    args = ap.parse_args()
    from fer_utils.data.datasets import CLASS_NAMES, Dataset
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import train_run

    cfg = RunConfig(data="random", model="resnet", image_size=args.image_size, epochs=2)
    n = args.batches * cfg.batch_size * 10 // 9 + 20
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    y = rng.integers(0, 7, n)
    ds = Dataset(x, y, x[:64], y[:64], [], [], CLASS_NAMES, "random", "random", cfg.image_size, "random")
    with tempfile.TemporaryDirectory() as d:
        train_run(Path(d) / "run", cfg, ds, max_batches=args.batches)
        import csv

        rows = list(csv.DictReader(open(Path(d) / "run" / "history.csv")))
    secs = float(rows[-1]["seconds"])
    ips = args.batches * cfg.batch_size / secs
    epoch_s = RAF_TRAIN_AFTER_HOLDOUT / ips
    print(f"backend {backend.name()}, oneDNN {backend.onednn_enabled()}, {os.cpu_count()} CPUs")
    print(f"steady epoch: {args.batches} batches of {cfg.batch_size} in {secs:.1f}s = {ips:.0f} images/s "
          f"(incl. the holdout pass); RAF-DB epoch ~{epoch_s:.0f}s; {args.epochs_budget} epochs ~{args.epochs_budget * epoch_s / 3600:.2f} h")
    print(f"RESULT images_per_s={ips:.0f} raf_epoch_s={epoch_s:.0f} hours_for_{args.epochs_budget}_epochs={args.epochs_budget * epoch_s / 3600:.2f}")


if __name__ == "__main__":
    main()
