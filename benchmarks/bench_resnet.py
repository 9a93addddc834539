"""The resnet's training step against the machine's GEMM ceiling, and the levers the
frameworks offer (issue 26 item 3): XLA, op determinism, bfloat16, the JAX backend.

    python benchmarks/bench_resnet.py [--size 64] [--batch 128] [--steps 12] [--only NAME,...] [--json OUT]

Each lever trains the real recipe (fer_utils.models.resnet.build_resnet with its augmentation,
the recipe's MixUp/CutMix batches, its optimizer and loss) for ``--warmup`` + ``--steps``
batches of random faces in a fresh process (benchmarks/_resnet_worker.py; process-wide switches
apply cleanly) and times the steps after the warm-up with a callback. Rates are images per
wall second and per CPU-second of the process (robust to a shared machine); the share of the
ceiling is analytic training FLOPs (fer_utils.models.registry.train_flops: forward + backward,
the first conv's input gradient not counted) per CPU-second over the best float32 2048x2048
GEMM per CPU-second measured in the same run (_benchlib.gemm_gflops). A bfloat16 GEMM is
measured beside it for what AMX/AVX512_BF16 could reach. Ends with one ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _benchlib as bl  # noqa: E402

#: name -> (worker args, environment). The first is what fer train does today.
LEVERS = {
    "as trained (TF, oneDNN, op determinism)": ({}, {}),
    "no op determinism": ({"determinism": False}, {}),
    "XLA jit_compile (determinism off: Keras drops XLA under it)": ({"determinism": False, "jit": True}, {}),
    "mixed_bfloat16": ({"mixed": "mixed_bfloat16"}, {}),
    "mixed_bfloat16, no op determinism": ({"mixed": "mixed_bfloat16", "determinism": False}, {}),
    "KERAS_BACKEND=jax (XLA CPU)": ({}, {"KERAS_BACKEND": "jax"}),
    "KERAS_BACKEND=jax + mixed_bfloat16": ({"mixed": "mixed_bfloat16"}, {"KERAS_BACKEND": "jax"}),
    "no MixUp/CutMix on the host (diagnostic)": ({"mix_prob": 0.0}, {}),
    "no augmentation, no MixUp, no determinism (diagnostic)": ({"augment": False, "mix_prob": 0.0, "determinism": False}, {}),
    "the same + XLA jit_compile (diagnostic: XLA on the network)": ({"augment": False, "mix_prob": 0.0, "determinism": False, "jit": True}, {}),
}


def bf16_gemm(n: int = 2048, reps: int = 5) -> float | None:
    """Best bfloat16 n x n matmul rate through TensorFlow (GFLOP per CPU-second), or None."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    a = tf.cast(tf.random.stateless_normal((n, n), seed=(0, 1)), tf.bfloat16)
    b = tf.cast(tf.random.stateless_normal((n, n), seed=(0, 2)), tf.bfloat16)
    f = lambda: tf.matmul(a, b).numpy()  # noqa: E731
    f()
    return 2.0 * n**3 / 1e9 / min(bl._timed(f)[1] for _ in range(reps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--only", default=None, help="comma-separated lever numbers (1 = as trained)")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args()
    from fer_utils.training import backend

    backend.configure_performance()
    m = bl.machine()
    gemm = bl.gemm_gflops()
    bf16 = bf16_gemm()
    print(f"machine: {m}")
    print(f"float32 GEMM ceiling: {gemm['best']:.1f} GFLOP/s wall, {gemm['best_per_cpu_s']:.1f} GFLOP per CPU-s; "
          f"bfloat16 GEMM: {bf16 or float('nan'):.1f} GFLOP per CPU-s")
    names = list(LEVERS)
    if args.only:
        names = [names[int(i) - 1] for i in args.only.split(",")]
    rows = {}
    for name in names:
        wargs, env = LEVERS[name]
        wargs = {"size": args.size, "batch": args.batch, "warmup": args.warmup, "steps": args.steps, **wargs}
        try:
            r = bl.run_worker("_resnet_worker.py", wargs, env)
        except Exception as exc:  # noqa: BLE001 - a lever that does not run is a finding
            print(f"{name:62s} FAILED: {str(exc).strip().splitlines()[-1][:160]}", flush=True)
            rows[name] = {"failed": str(exc)[-2000:]}
            continue
        gf_cpu = r["train_flops_per_image"] * r["img_per_cpu_s"] / 1e9
        r["gflop_per_cpu_s"], r["share_of_fp32_gemm"] = gf_cpu, gf_cpu / gemm["best_per_cpu_s"]
        rows[name] = r
        print(f"{name:62s} {r['img_s']:6.0f} img/s wall, {r['img_per_cpu_s']:6.1f} img/CPU-s, {gf_cpu:6.1f} GFLOP/CPU-s "
              f"= {100 * r['share_of_fp32_gemm']:4.0f}% of fp32 GEMM (cpu util {r['cpu_util']:.2f}, load {r['loadavg1']:.1f})", flush=True)
    base = rows.get(names[0], {})
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "gemm": gemm, "bf16_gemm_per_cpu_s": bf16, "args": vars(args),
                                               "levers": rows}, indent=1, default=str))
    ok = {n: r for n, r in rows.items() if "img_per_cpu_s" in r}
    if base.get("img_per_cpu_s") and ok:
        best = max(ok, key=lambda n: ok[n]["img_per_cpu_s"])
        print(f"RESULT base_share={base['share_of_fp32_gemm']:.3f} best={best!r} best_share={ok[best]['share_of_fp32_gemm']:.3f} "
              f"speedup_per_cpu_s={ok[best]['img_per_cpu_s'] / base['img_per_cpu_s']:.2f}")


if __name__ == "__main__":
    main()
