"""Load time of full RAF-DB at 128x128: first load (decode + cache write) and second (cache).

Usage: python benchmarks/bench_load.py [PATH] [--size 128] [--cache DIR]
Target (issue 2): second load 10 s or less on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_utils.data import datasets

from fer_utils import paths  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path", nargs="?", default=str(ROOT.parent / "shared" / "data" / "raf-basic.zip"))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cache", default=None, help="cache folder (default: a fresh temporary one)")
    args = ap.parse_args()
    if not Path(args.path).exists():
        print(f"SKIP: {args.path} is absent")
        print("RESULT first_load_s=nan second_load_s=nan")
        return
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="fer-cache-"))
    paths.CACHE_DIR = cache
    try:
        t0 = time.perf_counter()
        ds = datasets.load(args.path, args.size)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds2 = datasets.load(args.path, args.size)
        second = time.perf_counter() - t0
        assert ds2.fingerprint == ds.fingerprint and ds2.from_cache
        gb = (ds.x_train.nbytes + ds.x_test.nbytes) / 1e9
        print(f"{ds.describe()}\n  arrays: {gb:.2f} GB uint8")
        print(f"first load (decode + write cache): {first:.1f} s ({(len(ds.y_train) + len(ds.y_test)) / first:.0f} img/s)")
        print(f"second load (from cache): {second:.2f} s")
        print(f"RESULT first_load_s={first:.1f} second_load_s={second:.2f}")
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
