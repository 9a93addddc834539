"""The only place that knows which Keras backend runs (TensorFlow-only paths are isolated here)."""

from __future__ import annotations

import os


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
    """Silence the backend's C++ start-up chatter (it would land in notebooks and reports)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
