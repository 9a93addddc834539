"""Shared helpers of the training/pipeline benchmarks (not a test; imported by bench_*.py).

Everything that touches RAF-DB keeps it outside the repository: the decoded-array cache and
the JPEG subset written for the report's ``flow_from_directory`` live under /tmp and the
subset is deleted by the caller when done.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "raf-basic.zip"
DEFAULT_CACHE = Path(os.environ.get("FER_BENCH_CACHE", Path(tempfile.gettempdir()) / "fer-bench-cache"))


# ---------------------------------------------------------------------------------- machine


def machine() -> dict:
    model, flags = "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = sorted(f for f in flags if f in {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni"})
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model,
        "simd": simd,
        "bf16_hw": bool({"avx512_bf16", "amx_bf16"} & flags),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg": [round(x, 2) for x in load],
    }


# ---------------------------------------------------------------------------------- data


def load_raf(path=DEFAULT_DATA, size: int = 128):
    from fer_utils.data import datasets
    from fer_utils import paths

    DEFAULT_CACHE.mkdir(parents=True, exist_ok=True)
    paths.CACHE_DIR = DEFAULT_CACHE
    return datasets.load(path, size, progress=False, verbose=False)


def write_jpeg_subset(ds, n: int, dest: Path, zip_path=DEFAULT_DATA, seed: int = 0) -> Path:
    """Copy the ORIGINAL JPEG bytes of ``n`` train images (stratified by a seeded shuffle) into
    ``dest/class/train/<Class>/`` - the report's layout for ``flow_from_directory``. Returns
    the train folder."""
    import numpy as np

    train = Path(dest) / "class" / "train"
    order = np.random.default_rng(seed).permutation(len(ds.y_train))[:n]
    with zipfile.ZipFile(zip_path) as zf:
        for i in order:
            cls = ds.class_names[int(ds.y_train[i])]
            d = train / cls
            d.mkdir(parents=True, exist_ok=True)
            rel = ds.names_train[i]
            (d / Path(rel).name).write_bytes(zf.read(rel))
    return train


# ---------------------------------------------------------------------------------- FLOPs


def model_flops(depth: int, size: int = 128, filters=(16, 32, 64, 128, 256, 512), dense=128, classes=7) -> dict:
    """Analytic multiply-add FLOPs per image of the report's CNN (2 FLOPs per MAC).

    forward: conv 2*Ho*Wo*k*k*Cin*Cout, dense 2*in*out (pool/relu/bias/augment not counted).
    train step: forward + backward, backward = 2x forward (data grad + weight grad) for every
    layer except conv1, whose input needs no gradient (1x). ``train_3x`` is the plain 3x rule.
    """
    pad = ("valid", "valid", "same", "same", "same", "same")
    side, cin, fwd, conv1 = size, 3, 0, 0
    for k in range(depth):
        ho = side - 2 if pad[k] == "valid" else side
        f = 2 * ho * ho * 9 * cin * filters[k]
        fwd += f
        if k == 0:
            conv1 = f
        side, cin = ho // 2, filters[k]
    flat = side * side * cin
    fwd += 2 * flat * dense + 2 * dense * classes
    return {"forward": fwd, "train": 3 * fwd - conv1, "train_3x": 3 * fwd}


def gemm_gflops(n: int = 2048, reps: int = 5) -> dict:
    """Best-of-``reps`` float32 n x n GEMM rate, NumPy (its BLAS) and keras.ops (the backend):
    GFLOP per wall second and GFLOP per CPU-second (all threads; robust to a shared machine)."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n**3 / 1e9
    import keras

    ta, tb = keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
    fs = {"numpy": lambda: a @ b, "keras": lambda: keras.ops.convert_to_numpy(keras.ops.matmul(ta, tb))}
    out = {}
    for name, f in fs.items():
        f()
        runs = [_timed(f) for _ in range(reps)]
        out[name] = flop / min(w for w, c in runs)
        out[name + "_per_cpu_s"] = flop / min(c for w, c in runs)
    out["best"] = max(out["numpy"], out["keras"])
    out["best_per_cpu_s"] = max(out["numpy_per_cpu_s"], out["keras_per_cpu_s"])
    return out


def _timed(f):
    t0, c0 = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - t0, time.process_time() - c0


# ---------------------------------------------------------------------------------- timing


def batch_timer():
    """A Keras callback recording perf_counter() at the end of every training batch."""
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.t = []

            self.c = []

        def on_train_batch_begin(self, batch, logs=None):
            if not self.t:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.t.append(time.perf_counter())
            self.c.append(time.process_time())  # CPU seconds of all threads of this process

    return Timer()


def throughput(timer, warmup: int, batch: int) -> dict:
    t = timer.t
    steps = len(t) - warmup
    secs = t[-1] - t[warmup - 1]
    cpu = timer.c[-1] - timer.c[warmup - 1]
    return {
        "img_s": steps * batch / secs,  # wall clock: what a user sees (depends on other load)
        "img_per_cpu_s": steps * batch / cpu,  # per CPU-second used: robust to a shared machine
        "cpu_util": cpu / secs,  # cores busy on average (2 = both cores)
        "steps": steps, "secs": secs, "first_step_s": t[0] - timer.t0,
        "loadavg1": os.getloadavg()[0],
    }


# ---------------------------------------------------------------------------------- subprocess


def run_worker(script: str, args: dict, env: dict | None = None, timeout: float = 900) -> dict:
    """Run ``python benchmarks/<script> '<json args>'`` in a fresh process (so env-var levers
    and process-wide switches such as op determinism apply) and return its ``WORKER {json}``
    line, plus its peak RSS (``ru_maxrss`` of the child)."""
    import resource

    e = dict(os.environ)
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    e.update({k: str(v) for k, v in (env or {}).items()})
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), json.dumps(args)],
        env=e, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT),
    )
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    for line in p.stdout.splitlines()[::-1]:
        if line.startswith("WORKER "):
            out = json.loads(line[7:])
            out["wall_s"] = wall
            # ru_maxrss of children is the max over all children so far: only exact when this
            # child is the largest yet; the worker reports its own ru_maxrss too (self_maxrss_mb).
            out["children_maxrss_mb"] = peak / 1024 if peak > before else None
            return out
    raise RuntimeError(f"{script} {args} failed (rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")


def cleanup(path) -> None:
    shutil.rmtree(path, ignore_errors=True)
