"""Tables 1-4 without notebooks: the same library calls the experiment notebooks make.

For machines without Jupyter (a lent GPU box running KERAS_BACKEND=jax, say) and for timing.
Prints each table in the report's columns; results land in the run store as usual, so the
report notebook can assemble them later.

Usage: python benchmarks/run_tables.py --profile tenth --data ../shared/data/raf-basic.zip [--tables 1,2,3,4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_utils import experiments  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--data", default="")
    ap.add_argument("--seeds", default="")
    ap.add_argument("--selection", default="test")
    ap.add_argument("--tables", default="1,2,3,4")
    ap.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    t0 = time.perf_counter()
    exp = experiments.setup(args.profile, args.data, seeds, args.selection)
    import keras

    print(f"backend {keras.backend.backend()}, keras {keras.__version__}")
    p = experiments.plan(exp, tables=tuple(int(t) for t in args.tables.split(",")))
    print(f"plan: {p['n_runs']} runs, {p['total_epochs']} epochs, {p['epochs_to_train']} to train", flush=True)
    for t in (int(x) for x in args.tables.split(",")):
        ts = time.perf_counter()
        res = experiments.run_table(exp, t, verbose=not args.quiet)
        print(f"\n{res.caption} ({time.perf_counter() - ts:.0f}s)")
        print(res.display_frame().to_string())
        print(experiments.said_vs_got(res), flush=True)
    print(f"RESULT profile={args.profile} seconds={time.perf_counter() - t0:.0f} epochs={p['total_epochs']}")


if __name__ == "__main__":
    main()
