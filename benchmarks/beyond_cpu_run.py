"""One seed of the beyond recipe on this machine (TensorFlow by default), into a run folder.

    python benchmarks/beyond_cpu_run.py --data ../shared/data/raf-basic.zip --out /tmp/beyond/run-e12-s0 --epochs 12

made ``published/tenth-test-cpu/beyond/run-e12-s0`` (12 epochs on a 2-core CPU; the ``beyond``
profile's 60 epochs are ``fer run --profile beyond``). Prints the wall time and the test scores.
"""

import argparse
import json
import time

from fer_utils.data import datasets
from fer_utils.models.resnet import BeyondConfig
from fer_utils.training.beyond_train import train_beyond

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--data", required=True, help="RAF-DB folder or zip")
ap.add_argument("--out", required=True, help="the run folder (resumes nothing: a finished run is not retrained)")
ap.add_argument("--epochs", type=int, default=12)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()

t0 = time.time()
cfg = BeyondConfig(epochs=args.epochs, seed=args.seed)
ds = datasets.load(args.data, image_size=cfg.image_size)
metrics = train_beyond(ds, args.out, cfg)
ev = metrics["evaluations"][str(cfg.epochs)]
print(f"wall {time.time() - t0:.0f}s")
print(json.dumps({k: {m: ev[k][m] for m in ("accuracy", "ci95", "mean_class_accuracy")} for k in ("holdout", "test", "test_tta") if k in ev}, indent=1))
