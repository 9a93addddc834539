"""The engine's cost and speed-up here: a profile's plan sequentially vs on a local Dask cluster.

    .venv/bin/python benchmarks/bench_scale.py [--profile smoke] [--workers 2]

1. The plan trained sequentially in this process, from an empty store (wall seconds).
2. The same plan on ``--workers`` Dask worker processes, from another empty store; the
   histories must be identical at equal intra-op threads (checked, except ``seconds``).
3. The engine's own cost per run: each mode again on its now complete store (every run is
   handed out and found done: no data loaded, nothing trained), divided by the runs.

On 2 cores expect little from workers: TensorFlow already uses both cores for one run, and
each worker process pays its own start-up (imports, data load, tracing). The GPU worker sweep
is ``benchmarks/gpu_study.py`` (it needs a GPU, and reports through its own RESULT line).
Ends with one ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--home", default=None, help="FER_HOME for the data and the stores (default: a temporary folder)")
    args = ap.parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix="bench_scale_"))
    os.environ["FER_HOME"] = str(home)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    for k in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):  # this process trains as one worker does
        os.environ[k] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    sys.path.insert(0, str(ROOT))
    from fer_utils.training import engine
    from fer_utils.study import experiments

    exp = experiments.setup(profile=args.profile, verbose=False)
    plan = experiments.plan(exp)
    n = plan["n_runs"]
    common = dict(data_path=exp.data_path, progress=False)
    print(f"{args.profile}: {n} runs, {plan['epochs_to_train']} epochs; {os.cpu_count()} CPUs; {threads} intra-op thread(s) per process", flush=True)

    t = time.perf_counter()
    seq = engine.train_plan(plan, **common, store_root=home / "seq", data=exp.data)
    seq_s = time.perf_counter() - t
    t = time.perf_counter()
    par = engine.train_plan(plan, **common, store_root=home / "dask", workers=args.workers, threads=threads)
    par_s = time.perf_counter() - t
    same = all((home / "seq" / r["run_id"] / "history.csv").read_text().count(",") > 0 and
               [ln.rsplit(",", 1)[0] for ln in (home / "seq" / r["run_id"] / "history.csv").read_text().splitlines()] ==
               [ln.rsplit(",", 1)[0] for ln in (home / "dask" / r["run_id"] / "history.csv").read_text().splitlines()]
               for r in plan["runs"])
    print(f"train: sequential {seq_s:.1f}s ({seq['epochs_trained']} epochs), {args.workers} workers {par_s:.1f}s "
          f"({par['epochs_trained']} epochs); speed-up {seq_s / par_s:.2f}x; histories identical: {same}", flush=True)

    t = time.perf_counter()
    engine.train_plan(dict(plan, runs=[dict(r, to_train=r["epochs"]) for r in plan["runs"]]), **common, store_root=home / "seq", data=exp.data)
    seq_over = (time.perf_counter() - t) / n
    t = time.perf_counter()
    engine.train_plan(dict(plan, runs=[dict(r, to_train=r["epochs"]) for r in plan["runs"]]), **common, store_root=home / "dask",
                      workers=args.workers, threads=threads)
    par_over = time.perf_counter() - t
    print(f"engine overhead: sequential {seq_over * 1000:.1f} ms per run; local cluster of {args.workers}: {par_over:.1f}s "
          f"for {n} runs (start-up, store check, {n} tasks, shut-down)", flush=True)
    print(f"RESULT bench_scale profile={args.profile} runs={n} epochs={plan['epochs_to_train']} sequential_s={seq_s:.1f} "
          f"workers{args.workers}_s={par_s:.1f} speedup={seq_s / par_s:.2f} identical={same} "
          f"overhead_seq_ms_per_run={seq_over * 1000:.1f} overhead_cluster_s={par_over:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
