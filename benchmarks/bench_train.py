"""Training throughput: the REPORT's pipeline vs the project's, on the same data and model;
achieved FLOP/s as a share of float32 GEMM; peak memory of a full-RAF-DB training run.

Usage: python benchmarks/bench_train.py [PATH] [--depths 2,4,6] [--steps 12] [--warmup 3]
                                        [--levers] [--no-memory] [--memory-steps 30]

* report: the report's ``ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2,
  horizontal_flip=True).flow_from_directory(dir, target_size=(128,128), batch_size=64,
  class_mode='categorical')`` (Keras 3's legacy copy), under TensorFlow's own defaults as the
  report ran (oneDNN off on an AVX2-only CPU; ``--split`` adds the report's pipeline WITH
  oneDNN, to separate the data-pipeline gain from the kernel gain), over the original JPEGs of a 2,048-image
  subset of RAF-DB train, written to /tmp as class/train/<Class>/*.jpg (deleted at the end),
  feeding the conv stack of ``build_model(depth, 128, augment=False)`` with a float32 input
  (the report's model had no Rescaling layer: its generator rescaled).
* project: what ``fer_utils.training.trainer.train_run`` does: full RAF-DB train as uint8 in memory,
  the ``_batches`` PyDataset in a shuffled order, ``build_model(depth, 128)`` (Rescaling +
  ReportAugmentation inside the model), op determinism on - plus
  ``backend.configure_performance()`` (the levers kept as defaults; see RESULTS.md).

Each measurement runs in its own process (process-wide switches and env-var levers apply
cleanly); it times ``--steps`` batches after ``--warmup`` batches with a callback. Two rates
are given: images per wall second (what a user sees, which depends on what else runs on the
machine) and images per CPU-second of the process (all threads; robust to a shared machine).
Ratios are given for both; on a machine shared with other jobs trust the CPU-second ratio.

FLOPs are counted ANALYTICALLY (``_benchlib.model_flops``): conv 2*Ho*Wo*9*Cin*Cout and dense
2*in*out per image forward; a training step = forward + backward, backward = 2x forward except
conv1 (its input needs no gradient: 1x). Pooling, ReLU, bias, augmentation, Adam are not
counted. The share is against the best float32 2048x2048 GEMM (NumPy's BLAS or keras.ops)
measured here, per CPU-second, so both sides see the same cores.

Targets (issue "Performance"): project/report >= 1.5x per depth; depth 4 at >= 40% of GEMM;
peak RSS of the full-data run <= 2.5 GB. Ends with one line ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _benchlib as bl  # noqa: E402

#: The report's pipeline runs with TensorFlow's own defaults, as the report did: importing
#: fer_utils applies backend.configure_performance() (oneDNN on), so the TF default is restored
#: explicitly. TF turns oneDNN on by itself only on AVX512_VNNI/AVX512_BF16/AMX CPUs.
REPORT_ENV = {"TF_ENABLE_ONEDNN_OPTS": "1" if bl.machine()["bf16_hw"] or "avx512_vnni" in bl.machine()["simd"] else "0"}
NO_ONEDNN = {"TF_ENABLE_ONEDNN_OPTS": "0"}

#: Levers tried at depth 4 (--levers): name -> (worker args, environment)
LEVERS = {
    "project, TF defaults (oneDNN off)": ({"configure": False}, NO_ONEDNN),
    "no op determinism": ({"configure": False, "determinism": False}, NO_ONEDNN),
    "TF_ENABLE_ONEDNN_OPTS=0 (TF's default on this AVX2 CPU)": ({"configure": False}, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "TF_ENABLE_ONEDNN_OPTS=1 (configure_performance)": ({"configure": True}, {}),
    "oneDNN + no op determinism": ({"configure": True, "determinism": False}, {}),
    "oneDNN + PyDataset workers=2": ({"configure": True, "workers": 2}, {}),
    "oneDNN + TF threads intra=2 inter=1": ({"configure": True, "threads": [2, 1]}, {}),
    "oneDNN + OMP_NUM_THREADS=2": ({"configure": True}, {"OMP_NUM_THREADS": "2"}),
    "no augmentation layer (diagnostic)": ({"configure": False, "augment": False}, NO_ONEDNN),
    "XLA jit_compile=True (determinism off: Keras drops XLA under it)": ({"configure": False, "determinism": False, "jit": True}, NO_ONEDNN),
    "PyDataset workers=2 (prefetch thread)": ({"configure": False, "workers": 2}, NO_ONEDNN),
    "TF threads intra=2 inter=1": ({"configure": False, "threads": [2, 1]}, NO_ONEDNN),
    "KERAS_BACKEND=jax (XLA CPU)": ({"configure": False}, {"KERAS_BACKEND": "jax"}),
    "oneDNN + mixed_bfloat16 (no AVX512_BF16/AMX here)": ({"configure": True, "mixed": "mixed_bfloat16"}, {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", default=str(bl.DEFAULT_DATA))
    ap.add_argument("--depths", default="2,4,6")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12, help="timed batches per measurement (after warm-up)")
    ap.add_argument("--subset", type=int, default=2048, help="JPEGs written for the report's generator")
    ap.add_argument("--levers", action="store_true", help="also run the lever sweep at depth 4")
    ap.add_argument("--no-compare", action="store_true", help="skip the report-vs-project comparison")
    ap.add_argument("--split", action="store_true",
                    help="also split the depth-4 gain: report pipeline with oneDNN vs project with oneDNN (pipeline only)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-steps", type=int, default=30)
    args = ap.parse_args()
    if not Path(args.path).exists():
        print(f"SKIP: {args.path} is absent")
        print("RESULT ratio_d4=nan")
        return
    depths = [int(d) for d in args.depths.split(",")]
    m = bl.machine()
    print(f"machine: {json.dumps(m)}")
    gemm = bl.gemm_gflops()
    print(f"float32 GEMM 2048^3, best of 5: numpy {gemm['numpy']:.1f} GFLOP/s ({gemm['numpy_per_cpu_s']:.1f} per CPU-s), "
          f"keras.ops {gemm['keras']:.1f} GFLOP/s ({gemm['keras_per_cpu_s']:.1f} per CPU-s)")
    res: dict[str, float] = {"gemm_gflops": gemm["best"], "gemm_gflop_per_cpu_s": gemm["best_per_cpu_s"]}
    tmp = Path(tempfile.mkdtemp(prefix="fer-bench-train-"))
    base = {"batch": args.batch, "warmup": args.warmup, "steps": args.steps}
    try:
        if not args.no_compare:
            ds = bl.load_raf(args.path)
            train_dir = bl.write_jpeg_subset(ds, args.subset, tmp, args.path)
            del ds
            print(f"\n{'depth':>5} {'report img/s':>13} {'project img/s':>14} {'ratio':>6} | {'report img/CPU-s':>16} "
                  f"{'project img/CPU-s':>17} {'ratio':>6} | {'GFLOP/CPU-s':>11} {'% GEMM':>7}")
            for d in depths:
                rw = bl.run_worker("_train_worker.py", {**base, "pipeline": "report", "depths": [d], "jpeg_dir": str(train_dir)}, REPORT_ENV)
                pw = bl.run_worker("_train_worker.py", {**base, "pipeline": "project", "depths": [d], "configure": True})
                r, p = rw["results"][str(d)], pw["results"][str(d)]
                res[f"report_onednn_d{d}"], res[f"project_onednn_d{d}"] = float(bool(rw["onednn"])), float(bool(pw["onednn"]))
                fl = bl.model_flops(d)["train"] / 1e9
                share = p["img_per_cpu_s"] * fl / gemm["best_per_cpu_s"]
                res.update({
                    f"report_img_s_d{d}": r["img_s"], f"project_img_s_d{d}": p["img_s"], f"ratio_d{d}": p["img_s"] / r["img_s"],
                    f"report_img_cpu_s_d{d}": r["img_per_cpu_s"], f"project_img_cpu_s_d{d}": p["img_per_cpu_s"],
                    f"ratio_cpu_d{d}": p["img_per_cpu_s"] / r["img_per_cpu_s"],
                    f"gflop_per_img_d{d}": fl, f"gemm_share_d{d}": share,
                    f"project_gflops_wall_d{d}": p["img_s"] * fl,
                })
                print(f"{d:>5} {r['img_s']:>13.1f} {p['img_s']:>14.1f} {p['img_s'] / r['img_s']:>6.2f} | {r['img_per_cpu_s']:>16.1f} "
                      f"{p['img_per_cpu_s']:>17.1f} {p['img_per_cpu_s'] / r['img_per_cpu_s']:>6.2f} | "
                      f"{p['img_per_cpu_s'] * fl:>11.1f} {100 * share:>6.1f}%   (load {p['loadavg1']:.1f})", flush=True)
            if args.split:
                r = bl.run_worker("_train_worker.py", {**base, "pipeline": "report", "depths": [4], "jpeg_dir": str(train_dir)}, {"TF_ENABLE_ONEDNN_OPTS": "1"})["results"]["4"]
                p = bl.run_worker("_train_worker.py", {**base, "pipeline": "project", "depths": [4], "configure": True})["results"]["4"]
                res.update({"split_report_onednn_img_cpu_s_d4": r["img_per_cpu_s"], "split_project_img_cpu_s_d4": p["img_per_cpu_s"],
                            "split_pipeline_ratio_cpu_d4": p["img_per_cpu_s"] / r["img_per_cpu_s"],
                            "split_pipeline_ratio_wall_d4": p["img_s"] / r["img_s"]})
                print(f"\nboth with oneDNN, depth 4: report {r['img_s']:.1f} img/s ({r['img_per_cpu_s']:.1f} img/CPU-s), project "
                      f"{p['img_s']:.1f} img/s ({p['img_per_cpu_s']:.1f} img/CPU-s): pipeline-only gain "
                      f"{p['img_s'] / r['img_s']:.2f}x wall, {p['img_per_cpu_s'] / r['img_per_cpu_s']:.2f}x per CPU-s", flush=True)
            bl.cleanup(tmp)
        if args.levers:
            print("\nlevers at depth 4 (project pipeline):")
            for name, (over, env) in LEVERS.items():
                try:
                    r = bl.run_worker("_train_worker.py", {**base, "pipeline": "project", "depths": [4], **over}, env)["results"]["4"]
                    print(f"  {name:<62} {r['img_s']:6.1f} img/s  {r['img_per_cpu_s']:6.1f} img/CPU-s  (load {r['loadavg1']:.1f})", flush=True)
                except Exception as exc:  # noqa: BLE001 - a lever that fails is a finding
                    print(f"  {name:<62} FAILED: {str(exc).splitlines()[-1][:200]}")
        if not args.no_memory:
            r = bl.run_worker("_train_worker.py", {"pipeline": "memory", "depths": [4], "batch": args.batch, "warmup": 3,
                                                   "steps": max(1, args.memory_steps - 3), "configure": True, "val_steps": 4})
            res["peak_rss_gb"] = r["self_maxrss_mb"] / 1024
            print(f"\npeak RSS, full RAF-DB at 128 (load + {args.memory_steps} train steps depth 4 batch {args.batch} "
                  f"+ 4 validation batches of 256): {res['peak_rss_gb']:.2f} GB (ru_maxrss of the child; target <= 2.5)")
    finally:
        bl.cleanup(tmp)
    res["loadavg1"] = os.getloadavg()[0]
    print("JSON " + json.dumps(res))
    print("RESULT " + " ".join(f"{k}={v:.4g}" for k, v in res.items()))


if __name__ == "__main__":
    main()
