"""Ablations of the beyond recipe on the holdout (fer_utils.study.ablation): one factor at a time.

    python benchmarks/beyond_ablation.py --data ../shared/data/raf-basic.zip --out /tmp/ablation --epochs 10

Each variant trains into OUT/<variant> (resumable: run it again after a kill), is scored on the
holdout as is, in grayscale, and in grayscale at 48x48, and is compared with the baseline on the
same faces (McNemar, paired bootstrap). Test is never scored. Writes OUT/ablation.json, prints
the table and a RESULT line.
"""

import argparse
import json
import time

from fer_utils.data import datasets
from fer_utils.study.ablation import VARIANTS, format_ablation, run_ablation
from fer_utils.models.resnet import BeyondConfig

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--data", required=True, help="RAF-DB folder or zip")
ap.add_argument("--out", required=True, help="a folder for the variants' runs and ablation.json")
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
args = ap.parse_args()

t0 = time.time()
base = BeyondConfig(epochs=args.epochs, seed=args.seed)
ds = datasets.load(args.data, image_size=base.image_size)
r = run_ablation(ds, args.out, base, args.variants)
print(format_ablation(r))
best = max(r["variants"], key=lambda n: r["variants"][n]["as-is"]["accuracy"])
print(f"wall {time.time() - t0:.0f}s")
print("RESULT " + json.dumps({"epochs": args.epochs, "seed": args.seed, "best_on_holdout": best,
                              **{n: round(v["as-is"]["accuracy"], 4) for n, v in r["variants"].items()}}))
