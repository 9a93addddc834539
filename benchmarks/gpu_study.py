"""The full profile on one GPU: a worker sweep beside the analytic ceiling, then as much of the
study as the time allows, published as small files.

On a GPU box with JAX (and keras, dask, distributed: carried as wheels, see the README)::

    KERAS_BACKEND=jax python benchmarks/gpu_study.py --data .gpu_data/raf-basic.zip \\
        --out $OUT --budget-s 520 --sweep 1,2,4 --sweep-s 75

(a) For each worker count W of ``--sweep``: W Dask workers share the GPU (JAX memory fraction
    0.9/W) and train the plan's runs, in the plan's order and into the real store (nothing is
    wasted), for ``--sweep-s`` seconds. Aggregate training images/s counts the epochs that
    finished after the first one (start-up and JIT compilation are reported apart), and
    FLOP/s (analytic: :func:`fer_utils.models.recipes.training_flops`) is set against the GPU's peak.
(b) The rest of the budget trains the plan with the best W: Tables 2 and 4 under
    ``selection=test`` seed 0 first, then every table under ``holdout`` with seeds 0, 1, 2.
(c) Every table whose runs are complete gets its manifest and is published
    (:func:`fer_utils.study.published.publish`) into ``<out>/published.tar.gz`` (numbers only), with
    ``<out>/gpu_study.json`` (sweep, what was trained, what is left). Back here, unpack it and
    draw each folder's figure: ``fer report --published published/<name> --figure``.

The run store lives in ``--home`` (default /tmp/fer_gpu_home): a second call on the same
machine resumes there. Checkpoints are too big to come back through the device's file limits,
so a fresh machine starts the unfinished runs again. On CPU (tests): ``--profile smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Dense peak TFLOP/s from NVIDIA's H100 SXM / H200 datasheets (no sparsity). JAX computes
#: float32 matmuls and convolutions on TF32 tensor cores by default on these GPUs.
PEAK_TFLOPS = {"H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}, "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}}
PHASES = {  # (selection, seeds, tables), in the order they are trained
    "full": [("test", (0,), (2, 4)), ("holdout", (0, 1, 2), (1, 2, 3, 4))],
    "tenth": [("test", (0,), (2, 4)), ("holdout", (0, 1, 2), (1, 2, 3, 4))],
    "smoke": [("test", (0,), (2, 4)), ("holdout", (0, 1), (1, 2, 3, 4))],
}


def gpu_name() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def make_plan(phases, profile, data):
    """One plan of every phase, its runs tagged with the phase's priority (earlier first)."""
    from fer_utils.study import experiments

    runs, exps = {}, []
    for k, (selection, seeds, tables) in enumerate(phases):
        exp = experiments.setup(profile=profile, data=data, seeds=list(seeds), selection=selection, verbose=False)
        exps.append((exp, tables))
        for r in experiments.plan(exp, tables=tables)["runs"]:
            runs.setdefault(r["run_id"], dict(r, priority=len(phases) - k))
    return {"runs": list(runs.values())}, exps


def epoch_cost(cfg: dict, n_train: int, n_test: int) -> tuple[int, float]:
    """(training images, FLOPs) of one epoch of a run: training plus the validation pass."""
    from fer_utils.models.report_cnn import training_flops

    n_val = round(n_train * cfg.get("val_fraction", 0.1)) if cfg["selection"] == "holdout" else n_test
    n_tr = n_train - n_val if cfg["selection"] == "holdout" else n_train
    f = training_flops(cfg["depth"], cfg["image_size"])
    return n_tr, n_tr * f + n_val * f / 3


def rates(summary, plan, n_train, n_test, t_call) -> dict:
    """Aggregate images/s and TFLOP/s over the epochs that finished after the first one."""
    cfgs = {r["run_id"]: r["config"] for r in plan["runs"]}
    times = sorted(summary["epoch_times"])
    out = {"epochs": len(times), "first_epoch_after_s": round(times[0][0] - t_call, 1) if times else None}
    if len(times) >= 2:
        t_first, t_end = times[0][0], t_call + summary["seconds"]
        costs = [epoch_cost(cfgs[rid], n_train, n_test) for _, rid in times[1:]]
        window = max(t_end - t_first, 1e-9)
        out.update(window_s=round(window, 1), images_per_s=round(sum(c[0] for c in costs) / window),
                   tflops=round(sum(c[1] for c in costs) / window / 1e12, 2))
    return out


def publish_complete(exps, profile, home: Path, staging: Path) -> list[dict]:
    """Manifest and publish every table whose runs are all complete (trains nothing)."""
    from fer_utils.training import engine
    from fer_utils.study import experiments
    from fer_utils.study import published

    done = []
    for exp, tables in exps:
        ok = []
        for t in tables:
            p = experiments.plan(exp, tables=(t,))
            if all(engine.run_complete(exp.store.root / r["run_id"], r) for r in p["runs"]):
                experiments.run_table(exp, t, verbose=False)
                ok.append(t)
        if ok:
            name = f"{profile}-{exp.selection}"
            published.publish(home / "results", staging / "published" / name, profile, tables=ok)
            done.append({"name": name, "tables": ok, "seeds": list(exp.seeds)})
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="RAF-DB folder or zip (smoke: any labelled set)")
    ap.add_argument("--out", required=True, help="folder for gpu_study.json and published.tar.gz")
    ap.add_argument("--profile", default="full", choices=sorted(PHASES))
    ap.add_argument("--home", default="/tmp/fer_gpu_home", help="FER_HOME of the run store (resumed when it exists)")
    ap.add_argument("--budget-s", type=float, default=520, help="wall-clock budget of this whole script")
    ap.add_argument("--sweep", default="1,2,4,8", help="worker counts to measure ('' for none)")
    ap.add_argument("--sweep-s", type=float, default=75,
                    help="seconds per sweep point (the first epoch ends about 37 s after start on an H100: shorter points measure nothing)")
    ap.add_argument("--workers-per-gpu", type=int, default=0, help="for (b); 0: the sweep's best")
    ap.add_argument("--publish-s", type=float, default=45, help="seconds kept at the end to publish")
    args = ap.parse_args(argv)
    t_start = time.time()
    deadline = t_start + args.budget_s
    home, out = Path(args.home).resolve(), Path(args.out).resolve()
    os.environ["FER_HOME"] = str(home)  # read by fer_utils.paths at import
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # this process trains nothing
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    from fer_utils.training import engine

    out.mkdir(parents=True, exist_ok=True)
    gpu = gpu_name()
    report = {"profile": args.profile, "gpu": gpu, "backend": os.environ["KERAS_BACKEND"], "budget_s": args.budget_s, "sweep": []}
    print(f"gpu_study: {gpu or 'no GPU (CPU workers)'}, profile {args.profile}, budget {args.budget_s:.0f}s", flush=True)

    t0 = time.time()
    plan, exps = make_plan(PHASES[args.profile], args.profile, args.data)
    data = exps[0][0].data
    n_train, n_test = len(data.y_train), len(data.y_test)
    report.update(load_s=round(time.time() - t0, 1), n_train=n_train, n_test=n_test, runs=len(plan["runs"]),
                  epochs_total=sum(r["epochs"] for r in plan["runs"]))
    print(f"data {data.describe()} in {report['load_s']}s; plan: {report['runs']} runs, {report['epochs_total']} epochs", flush=True)
    common = dict(data_path=data.source, store_root=home / "results" / "runs", progress=False)

    def engine_opts(w):
        return dict(gpus=1, workers_per_gpu=w) if gpu else dict(workers=w)

    for w in [int(x) for x in args.sweep.split(",") if x.strip()]:
        if deadline - time.time() < args.sweep_s + args.publish_s + 30:
            print(f"sweep: no time left for {w} workers", flush=True)
            break
        plan, exps = make_plan(PHASES[args.profile], args.profile, args.data)
        t_call = time.time()
        s = engine.train_plan(plan, **common, **engine_opts(w), deadline=t_call + args.sweep_s)
        point = {"workers": w, **rates(s, plan, n_train, n_test, t_call), "wall_s": round(s["seconds"], 1)}
        if gpu and point.get("tflops") is not None:
            peak = PEAK_TFLOPS.get("H200" if "H200" in gpu else "H100")
            point["share_of_peak"] = {k: round(point["tflops"] / v, 4) for k, v in peak.items()}
        report["sweep"].append(point)
        print(f"sweep: {json.dumps(point)}", flush=True)

    best = args.workers_per_gpu or max(report["sweep"], key=lambda p: p.get("images_per_s", 0), default={"workers": 4})["workers"]
    plan, exps = make_plan(PHASES[args.profile], args.profile, args.data)
    left = deadline - args.publish_s - time.time()
    if left > 20:
        t_call = time.time()
        s = engine.train_plan(plan, **common, **engine_opts(best), deadline=deadline - args.publish_s)
        report["train"] = {"workers": best, "epochs_trained": s["epochs_trained"], "stopped": s["stopped"],
                           "wall_s": round(s["seconds"], 1), **rates(s, plan, n_train, n_test, t_call)}
        print(f"train: {json.dumps(report['train'])}", flush=True)

    staging = out / "_staging"
    report["published"] = publish_complete(exps, args.profile, home, staging)
    plan, _ = make_plan(PHASES[args.profile], args.profile, args.data)
    report["runs_status"] = [{"run_id": r["run_id"], "tables": r["tables"], "priority": r["priority"], "epochs": r["epochs"], "done": r["done"]}
                             for r in plan["runs"]]
    report["epochs_done"] = sum(min(r["done"], r["epochs"]) for r in plan["runs"])
    if report["published"]:
        with tarfile.open(out / "published.tar.gz", "w:gz") as tar:
            tar.add(staging / "published", arcname="published")
    import shutil

    shutil.rmtree(staging, ignore_errors=True)  # made by this script, in its own output folder
    report["seconds"] = round(time.time() - t_start, 1)
    (out / "gpu_study.json").write_text(json.dumps(report, indent=2) + "\n")
    best_rate = max((p.get("images_per_s", 0) for p in report["sweep"]), default=0)
    print(f"RESULT gpu_study profile={args.profile} gpu={gpu!r} best_workers={best} best_images_per_s={best_rate} "
          f"epochs_done={report['epochs_done']}/{report['epochs_total']} published={[p['name'] + str(p['tables']) for p in report['published']]} "
          f"seconds={report['seconds']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
