"""Where and how a run's epochs were trained (provenance): backend, versions, machine, the
code's commit, the device and the precision switches that change the last bits of a metric."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git_commit(folder=None) -> str:
    """The commit of the project checkout (``folder``, default the project's), "+ dirty" noted."""
    from fer_utils import paths

    folder = Path(folder) if folder is not None else paths.PROJECT_DIR
    try:
        sha = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown (not a git checkout, or no commit yet)"
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git is not installed)"


def trained_with() -> dict:
    """Where epochs are being trained (provenance): backend, versions, machine, the code's commit,
    the device (``cpu`` or ``gpu``, its name and, for a CPU, the flags that pick its kernels) and
    the matmul precision (JAX's ``jax_default_matmul_precision``, TensorFlow's TF32 switch):
    backends and CPUs round differently, so a table must say which one made it."""
    import platform

    import keras

    from fer_utils.training import backend

    info = {"backend": keras.backend.backend(), "keras": keras.__version__, "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs", "commit": git_commit()}
    try:
        info.update(backend.device_info())
        info["matmul_precision"] = backend.matmul_precision()
        if backend.tf32_enabled() is not None:
            info["tf32_execution"] = backend.tf32_enabled()
        onednn = backend.onednn_enabled()
        if onednn is not None:  # oneDNN and Eigen round differently: a resumed run should not mix them
            info["onednn"] = onednn
    except Exception:  # noqa: BLE001 - provenance is best effort
        pass
    return info
