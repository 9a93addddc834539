"""The only place that knows which Keras backend runs (TensorFlow-only paths are isolated here)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Environment defaults that make training faster on CPU, set by :func:`configure_performance`
#: (``setdefault``: a value the user exported wins). Measured in benchmarks/RESULTS.md.
#:
#: ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow turns its oneDNN kernels on by default only on CPUs
#: with AVX512_VNNI/AVX512_BF16/AMX; on an AVX2-only CPU (the 2-core AMD EPYC reference
#: machine) it falls back to Eigen, whose 3-input-channel first conv runs at ~7 GFLOP per
#: CPU-second. With oneDNN the first conv's training step is ~4x cheaper and the whole depth-4
#: step ~2x. TensorFlow reads the variable once, when it is imported: it must be set first.
PERFORMANCE_ENV = {"TF_ENABLE_ONEDNN_OPTS": "1"}


def name() -> str:
    import keras

    return keras.backend.backend()


def make_deterministic() -> None:
    """Ask the backend for deterministic kernels (same seed, same numbers on CPU).

    TensorFlow needs ``enable_op_determinism``; JAX on CPU is deterministic already.

    Under JAX, float32 matrix products and convolutions run at ``"highest"`` precision (true
    float32), unless ``JAX_DEFAULT_MATMUL_PRECISION`` is exported: JAX's default on GPUs rounds
    their inputs to bfloat16/TF32, which is another computation than the report's float32
    (on CPU it changes nothing). The setting is recorded in every run's provenance.
    """
    if name() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif name() == "jax" and "JAX_DEFAULT_MATMUL_PRECISION" not in os.environ:
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")


#: Environment that keeps TensorFlow's and XLA's C++ start-up chatter (cudart_stub, absl's
#: "before InitializeLog" line, the oneDNN notice, cuDNN/cuBLAS factory registration) off the
#: terminal. Set in the environment, so papermill's kernels inherit it too.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ logging: errors only... and not even those
    "TF_CPP_MIN_VLOG_LEVEL": "0",
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "3",  # glog/absl-style loggers that read it (XLA)
    "ABSL_MIN_LOG_LEVEL": "3",
}


def quiet() -> None:
    """Silence the backend's C++ start-up chatter (it would land in notebooks and reports), and
    apply :func:`configure_performance` (every entry point calls this before Keras loads).

    A value the user exported wins (``TF_CPP_MIN_LOG_LEVEL=0 fer ...`` shows everything again).
    """
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:  # Python absl (TensorFlow's Python-side warnings) to errors only, before TF loads
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow and JAX
        pass
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0"):
        import logging

        # TensorFlow's Python logger: its "triggered tf.function retracing" notes are about Keras's
        # own predict/train functions, nothing a user can act on (errors still show)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        if "tensorflow" not in sys.modules:
            _silence_stderr_during_import("tensorflow")
    configure_performance()


class _QuietImport:
    """A one-shot import hook: the first import of ``name`` runs with file descriptor 2 pointed
    at /dev/null. TensorFlow 2.18+ writes its C++ start-up lines (absl's "before InitializeLog",
    the oneDNN notice, cudart_stub) before it reads TF_CPP_MIN_LOG_LEVEL, so only the descriptor
    can keep them off the terminal and out of notebook outputs (the kernel captures descriptor
    2). Python errors of the import still propagate (and print after the descriptor is back)."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        import importlib.util

        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot, and let the real finders find it
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec(module):
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(devnull, 2)
                finally:
                    os.close(devnull)
                exec_module(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)

        spec.loader.exec_module = quiet_exec
        return spec


def _silence_stderr_during_import(name: str) -> None:
    if not any(isinstance(f, _QuietImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport(name))


def device_info() -> dict:
    """``{"device": "cpu"|"gpu", "device_name": ...}`` of the device this process trains on."""
    if name() == "jax":
        import jax

        devs = jax.devices()
        kind = "gpu" if devs[0].platform in ("gpu", "cuda", "rocm") else devs[0].platform
        return {"device": kind, "device_name": ", ".join(sorted({d.device_kind for d in devs})), "device_count": len(devs)}
    if name() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            names = []
            for d in tf.config.list_physical_devices("GPU"):
                try:
                    names.append(tf.config.experimental.get_device_details(d).get("device_name", d.name))
                except Exception:  # noqa: BLE001 - details are optional
                    names.append(d.name)
            return {"device": "gpu", "device_name": ", ".join(sorted(set(names))), "device_count": len(gpus)}
    return {"device": "cpu", "device_name": _cpu_name(), "device_count": 1, "cpu_flags": cpu_flags()}


#: The CPU features that decide which kernels oneDNN and XLA pick, and so how a float32 sum is
#: rounded: the same seed trained on an AVX2-only CPU and on one with AMX agrees to rounding only.
KERNEL_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags(cpuinfo="/proc/cpuinfo") -> str | None:
    """Which :data:`KERNEL_CPU_FLAGS` this CPU has, space-separated in that order ("" for none);
    None where ``cpuinfo`` cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return " ".join(f for f in KERNEL_CPU_FLAGS if f in have)
    return None


def _cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_precision() -> str:
    """How this backend multiplies float32 matrices: JAX's ``jax_default_matmul_precision``
    (``default`` means bfloat16/TF32 passes on GPUs and TPUs, exact float32 on CPU) or
    TensorFlow's TF32 switch (``tf32`` when it is on and a GPU trains: on Ampere+ GPUs matmuls
    and convs round their inputs to 10 mantissa bits; ``float32`` otherwise, CPUs included,
    where the switch does nothing; :func:`tf32_enabled` gives the switch itself)."""
    if name() == "jax":
        import jax

        return str(jax.config.jax_default_matmul_precision or "default")
    if name() == "tensorflow":
        import tensorflow as tf

        on_gpu = bool(tf.config.list_logical_devices("GPU"))
        return "tf32" if on_gpu and tf.config.experimental.tensor_float_32_execution_enabled() else "float32"
    return "unknown"


def tf32_enabled() -> bool | None:
    """TensorFlow's ``enable_tensor_float_32_execution`` state (None: not TensorFlow)."""
    if name() != "tensorflow":
        return None
    import tensorflow as tf

    return bool(tf.config.experimental.tensor_float_32_execution_enabled())


def configure_performance() -> dict:
    """Set the CPU performance defaults of :data:`PERFORMANCE_ENV` (unless already exported).

    Call it before anything imports Keras/TensorFlow: TensorFlow reads these once at import.
    Returns ``{"applied": {...}, "effective": bool}``; ``effective`` is False when TensorFlow
    was already imported (the settings then apply to child processes only). Harmless under
    JAX. Kept out: XLA (the augmentation's ImageProjectiveTransformV3 does not compile under
    TensorFlow's XLA), thread-count changes, PyDataset workers, mixed precision (no bfloat16
    hardware on AVX2 CPUs): see benchmarks/RESULTS.md for the measurements.
    """
    applied = {}
    for key, value in PERFORMANCE_ENV.items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return {"applied": applied, "effective": "tensorflow" not in sys.modules}


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process (None: not TensorFlow)."""
    if name() != "tensorflow":
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # noqa: BLE001 - a private API; unknown is an answer
        return None
