"""Same numbers on every engine: TensorFlow vs JAX on one configuration (issue 12, item 6).

Measures, each backend in its own subprocess (benchmarks/_backend_worker.py):

1. ``start``: the initial weights from one seed, one augmentation batch from one stream seed,
   and the loss (and its gradient) of a confidently wrong softmax output, built-in vs ours.
2. ``agree``: one configuration (synthetic set, 48 px, depth 2, lr 0.001, batch 64, 3 epochs)
   under both backends, with the old backend-specific behaviours (``legacy``: Keras'
   initializers, ``keras.random`` augmentation draws, Keras' built-in loss) and without them;
   the largest difference of each history column.
3. ``collapse``: lr 0.01, depth 2, 2 epochs, seeds 0..5, 128 px synthetic faces: how many runs
   learn, sit at the class prior, or saturate (confidently wrong), per backend and variant.

Writes benchmarks/backends.json (numbers only) and ends with a ``RESULT`` line.

    .venv/bin/python benchmarks/bench_backends.py            # all three, ~15 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_backends.py --only start,agree

On a GPU box with JAX (and Keras, e.g. carried as wheels), the worker itself, then merged here:

    KERAS_BACKEND=jax JAX_DEFAULT_MATMUL_PRECISION=highest python3 benchmarks/_backend_worker.py \
        '{"task":"train","data":"SYN700","size":128,"lr":0.01,"seeds":[0,1,2,3,4,5],"epochs":2}' > gpu.log
    .venv/bin/python benchmarks/bench_backends.py --only none --gpu gpu.log
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "benchmarks" / "_backend_worker.py"
BACKENDS = ("tensorflow", "jax")
LEGACY = ["init", "rng", "loss"]
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def run_worker(backend: str, args: dict, timeout: int = 1800) -> list[dict]:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env.setdefault("JAX_PLATFORMS", "cpu")
    out = subprocess.run([sys.executable, str(WORKER), json.dumps(args)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{backend} worker failed:\n{out.stderr[-3000:]}")
    return [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]


def synthetic(folder: Path, n_train: int, n_test: int) -> Path:
    from fer_utils.data import synthetic as syn

    syn.generate(folder, n_train=n_train, n_test=n_test, n_unlabelled=0, seed=0, progress=False)
    return folder


def max_diffs(a: list, b: list) -> dict:
    """Largest |TF - JAX| of each history column, over the epochs."""
    d = np.abs(np.asarray(a) - np.asarray(b))
    return {m: float(d[:, i].max()) for i, m in enumerate(METRICS)} | {"per_epoch_loss": d[:, 0].tolist()}


def outcome(run: dict, prior_loss: float) -> str:
    """learned | prior (one class, loss at the class prior's entropy) | saturated (one class, confidently wrong)."""
    loss = run["history"][-1][2]  # val_loss of the last epoch
    one_class = sum(1 for c in run["predicted_classes"] if c) == 1
    if not one_class:
        return "learned"
    return "saturated" if loss > 2 * prior_loss else "prior"


def measure_start(tmp: Path, size: int = 48, legacy=()) -> dict:
    """Initial weights and one augmentation batch, TF vs JAX; the loss on a confidently wrong face."""
    res = {b: run_worker(b, {"task": "probe", "size": size, "out": str(tmp / f"w-{b}.npz"), "legacy": list(legacy)})[0] for b in BACKENDS}
    wt, wj = np.load(tmp / "w-tensorflow.npz"), np.load(tmp / "w-jax.npz")
    at, aj = np.load(tmp / "w-tensorflow-aug.npy"), np.load(tmp / "w-jax-aug.npy")
    kernels = [k for k in wt.files if wt[k].ndim > 1]
    return {
        "weights_bit_identical": all(np.array_equal(wt[k], wj[k]) for k in wt.files),
        "weights_max_abs_diff": float(max(np.abs(wt[k] - wj[k]).max() for k in wt.files)),
        "augmentation_max_abs_diff": float(np.abs(at - aj).max()),
        "kernel_corr_tf_jax": [float(np.corrcoef(wt[k].ravel(), wj[k].ravel())[0, 1]) for k in kernels],
        "loss_on_confidently_wrong": {b: {k: res[b][k] for k in ("keras", "ours", "exact_from_logits")} for b in BACKENDS},
        "adam": res["tensorflow"]["adam"], "backend_epsilon": res["tensorflow"]["backend_epsilon"],
    }


def measure_agree(data: Path, epochs: int = 3, size: int = 48, legacy_variants=((), tuple(LEGACY))) -> dict:
    out = {}
    for legacy in legacy_variants:
        args = {"task": "train", "data": str(data), "size": size, "lr": 0.001, "seeds": [0], "epochs": epochs, "legacy": list(legacy)}
        runs = {b: run_worker(b, args)[0] for b in BACKENDS}
        out["legacy" if legacy else "ours"] = {
            "history": {b: runs[b]["history"] for b in BACKENDS},
            "max_abs_diff": max_diffs(runs["tensorflow"]["history"], runs["jax"]["history"]),
            "seconds": {b: runs[b]["seconds"] for b in BACKENDS},
        }
    return out


#: Variants of the collapse count: the old backend-specific behaviours (``legacy``), ours, and
#: (for the JAX collapse's cause) Keras' initializers and draws with our loss alone.
VARIANTS = {"tensorflow/legacy": LEGACY, "tensorflow/ours": [], "jax/legacy": LEGACY,
            "jax/legacy_with_our_loss": ["init", "rng"], "jax/ours": []}


def measure_collapse(data: Path, seeds=range(6), size: int = 128, variants=tuple(VARIANTS), save=None) -> dict:
    from fer_utils.data import datasets

    ds = datasets.load(data, image_size=size, verbose=False, progress=False)
    prior = np.bincount(ds.y_train, minlength=ds.num_classes) / len(ds.y_train)
    prior_loss = float(-(prior * np.log(prior)).sum())
    table, runs = {}, []
    for key in variants:
        backend, name = key.split("/")
        args = {"task": "train", "data": str(data), "size": size, "lr": 0.01, "seeds": list(seeds), "epochs": 2, "legacy": VARIANTS[key]}
        rs = run_worker(backend, args, timeout=3600)
        counts = {"learned": 0, "prior": 0, "saturated": 0}
        for r in rs:
            r["outcome"] = outcome(r, prior_loss)
            counts[r["outcome"]] += 1
            runs.append({"backend": backend, "variant": name, **{k: r[k] for k in ("seed", "history", "predicted_classes", "outcome", "device", "matmul_precision")}})
        table[key] = counts
        print(f"  {key:28s} {counts}", flush=True)
        if save:
            save(table, runs)
    return {"prior_entropy": prior_loss, "saturated_loss_if_all_happiness": float((1 - prior.max()) * -np.log(1e-7)),
            "counts": table, "runs": runs, "config": {"lr": 0.01, "depth": 2, "epochs": 2, "batch": 64, "size": size,
                                                     "data": "synthetic n_train=700 n_test=350 seed 0", "seeds": list(seeds)}}


def merge_gpu(paths, prior_loss: float) -> dict:
    """The RESULT lines a GPU box printed (``_backend_worker.py`` under JAX, as in the module
    doc's recipe): the agreement run per matmul precision and the collapse counts per variant."""
    agree, counts, runs = {}, {}, []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if not line.startswith("RESULT "):
                continue
            parts = line[7:].replace("} {", "}\n{").split("\n")
            tag = json.loads(parts[0]) if len(parts) == 2 else {}
            r = json.loads(parts[-1])
            if r["lr"] == 0.001:
                agree[r["matmul_precision"] + (f" ({tag['variant']})" if tag else "")] = r["history"]
                continue
            key = f"jax-gpu/{tag.get('variant', 'ours')}/{r['matmul_precision']}"
            r["outcome"] = outcome(r, prior_loss)
            counts.setdefault(key, {"learned": 0, "prior": 0, "saturated": 0})[r["outcome"]] += 1
            runs.append({"key": key, **{k: r[k] for k in ("seed", "history", "predicted_classes", "outcome", "device")}})
    return {"agree_history": agree, "counts": counts, "runs": runs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="start,agree,collapse")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "backends.json"))
    ap.add_argument("--variants", default="", help=f"collapse variants, comma-separated (default all: {','.join(VARIANTS)})")
    ap.add_argument("--gpu", nargs="*", default=[], help="RESULT logs of the worker run on a GPU box under JAX, to merge in")
    a = ap.parse_args(argv)
    only = set(a.only.split(","))
    sys.path.insert(0, str(ROOT))
    from fer_utils.atomic import atomic_write_json
    result = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "start" in only:
            result["start"] = measure_start(tmp)
            result["start_legacy"] = {k: v for k, v in measure_start(tmp, legacy=LEGACY).items() if k != "loss_on_confidently_wrong"}
            print("start (legacy):", json.dumps(result["start_legacy"]), flush=True)
            print("start:", json.dumps({k: v for k, v in result["start"].items() if k != "loss_on_confidently_wrong"}), flush=True)
        if "agree" in only:
            result["agree"] = measure_agree(synthetic(tmp / "syn1400", 1400, 350))
            print("agree:", json.dumps({k: v["max_abs_diff"] for k, v in result["agree"].items()}), flush=True)
        if "collapse" in only:
            def save(table, runs):  # after every variant: a long measurement keeps what it has
                result["collapse_partial"] = {"counts": table, "runs": runs}
                atomic_write_json(a.out, result)
            variants = a.variants.split(",") if a.variants else tuple(VARIANTS)
            result["collapse"] = measure_collapse(synthetic(tmp / "syn700", 700, 350), variants=variants, save=save)
            result.pop("collapse_partial", None)
    if a.gpu:
        result["gpu"] = merge_gpu(a.gpu, result["collapse"]["prior_entropy"])
        print("gpu:", json.dumps(result["gpu"]["counts"]), flush=True)
    result["machine"] = {"cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    atomic_write_json(a.out, result)
    ag = result.get("agree", {}).get("ours", {}).get("max_abs_diff", {})
    print(f"RESULT wrote {a.out} in {time.perf_counter() - t0:.0f}s; ours: |dloss| max {ag.get('loss', float('nan')):.2e}, "
          f"|dval_acc| max {ag.get('val_accuracy', float('nan')):.3f}; collapse {json.dumps(result.get('collapse', {}).get('counts', {}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
