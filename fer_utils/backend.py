"""The only place that knows which Keras backend runs (TensorFlow-only paths are isolated here)."""

from __future__ import annotations

import os
import sys

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
    """
    if name() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def quiet() -> None:
    """Silence the backend's C++ start-up chatter (it would land in notebooks and reports), and
    apply :func:`configure_performance` (every entry point calls this before Keras loads)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    configure_performance()


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
