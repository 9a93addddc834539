"""Dask clusters for the engine: local worker processes (CPU threads or GPUs pinned per worker),
or an existing scheduler reached within a bounded time (:mod:`fer_utils.training.engine` uses
them; nothing here trains)."""

from __future__ import annotations

import os
import socket
import subprocess

from fer_utils.errors import ConfigError, FerError

#: Attempts of a run whose task failed or whose worker died, after the first.
DEFAULT_RETRIES = 3
#: Seconds an unreachable ``scheduler`` may take to fail (the tests hold it under 10).
CONNECT_TIMEOUT_S = 6.0


class EngineError(FerError):
    """The engine cannot hand out runs: no cluster, workers that cannot see the store, ..."""


def gpu_ids(gpus) -> list[str]:
    """The GPU ids to use: ``"all"`` (CUDA_VISIBLE_DEVICES, else nvidia-smi) or the first ``gpus``."""
    if gpus is None:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [g.strip() for g in visible.split(",") if g.strip()]
    else:
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        ids = [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    if gpus == "all":
        want = len(ids)
    else:
        try:
            want = int(gpus)
        except (TypeError, ValueError):
            raise EngineError(f"gpus {gpus!r}: expected 'all' or a number of GPUs such as 1") from None
    if want < 1 or want > len(ids):
        raise EngineError(f"--gpus {gpus}: {len(ids)} GPU(s) visible (nvidia-smi -L / CUDA_VISIBLE_DEVICES); ask for 1..{len(ids)} or leave --gpus out for CPU workers")
    return ids[:want]


def worker_envs(workers: int | None, gpus=None, workers_per_gpu: int = 1, cores: int | None = None, threads: int | None = None) -> list[dict]:
    """The environment of each local worker process, set before its backend loads.

    CPU: ``threads`` or ``cores // workers`` intra-op threads each (TensorFlow, OpenMP, BLAS).
    On CPU the thread count is part of the numbers: oneDNN splits reductions by it, so the
    last bits of a metric can differ between 1 and 2 threads; a history is byte-identical to a
    sequential run's at the same thread count (pass ``threads`` to match it). GPU: one GPU
    per worker (``CUDA_VISIBLE_DEVICES``); several workers on one GPU share its memory (JAX:
    no preallocation, a fraction ~0.9/W each; TensorFlow: memory growth).

    >>> [e["CUDA_VISIBLE_DEVICES"] for e in worker_envs(None, ["0", "1"], 2, cores=8)]
    ['0', '0', '1', '1']
    >>> worker_envs(2, cores=8)[0]["TF_NUM_INTRAOP_THREADS"]
    '4'
    """
    if workers_per_gpu < 1:
        raise EngineError(f"workers_per_gpu {workers_per_gpu!r}: expected 1 or more")
    ids = list(gpus or [])
    if ids:
        n = len(ids) * workers_per_gpu
        if workers not in (None, n):
            raise EngineError(f"workers {workers} with {len(ids)} GPU(s) x {workers_per_gpu} per GPU: leave --workers out (it is {n}) or make them agree")
    else:
        n = int(workers or 1)
    if n < 1:
        raise EngineError(f"workers {workers!r}: expected 1 or more worker processes")
    threads = str(int(threads) if threads else max(1, (cores or os.cpu_count() or 1) // n))
    base = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
            "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if not ids:
        return [dict(base) for _ in range(n)]
    envs = []
    for g in ids:
        for _ in range(workers_per_gpu):
            e = dict(base, CUDA_VISIBLE_DEVICES=g)
            if workers_per_gpu > 1:
                e.update(XLA_PYTHON_CLIENT_PREALLOCATE="false", XLA_PYTHON_CLIENT_MEM_FRACTION=f"{0.9 / workers_per_gpu:.3f}",
                         TF_FORCE_GPU_ALLOW_GROWTH="true")
            envs.append(e)
    return envs


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def local_cluster(envs: list[dict], retries: int = DEFAULT_RETRIES, dashboard_address=None):
    """A Dask cluster of one worker process per entry of ``envs`` (1 thread: one run each)."""
    import dask
    from distributed import Nanny, Scheduler, SpecCluster

    dask.config.set({"distributed.scheduler.allowed-failures": int(retries),
                     "distributed.worker.daemon": False, "distributed.admin.tick.limit": "60s"})
    workers = {f"w{i}": {"cls": Nanny, "options": {"nthreads": 1, "env": e, "host": "127.0.0.1", "silence_logs": 40}} for i, e in enumerate(envs)}
    if dashboard_address is None:  # Dask's usual port when free, else any (a second study on this machine)
        dashboard_address = ":8787" if _free(8787) else ":0"
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": dashboard_address}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=40, name="fer")


def check_gpus(gpus):
    """``--gpus``: None, "all" or a positive integer (also as a string); returns it normalised."""
    if gpus is None or gpus == "all":
        return gpus
    try:
        n = int(gpus)
    except (TypeError, ValueError):
        n = 0
    if isinstance(gpus, bool) or n < 1:
        raise ConfigError(f"--gpus {gpus!r}: expected 'all' or a positive number of GPUs, e.g. --gpus 2")
    return n


def check_engine(*, workers=None, gpus=None, workers_per_gpu=None, threads=None, scheduler=None, jit_epochs=False) -> dict:
    """The engine's options as ``fer run``, ``fer tables`` and ``fer train`` take them, checked
    before any data loads (one-line errors naming the option and the fix); returns them as
    :func:`fer_utils.training.engine.train_plan`'s keywords (options left out are not there)."""
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ConfigError(f"--workers {workers!r}: expected a positive number of worker processes, e.g. --workers 2")
    gpus = check_gpus(gpus)
    check_scheduler(scheduler)
    if gpus is not None:
        gpu_ids(gpus)  # enough GPUs visible here, before any data loads
    if jit_epochs:
        from fer_utils.training.device import check_available

        check_available()
    if workers_per_gpu is not None and gpus is None:
        raise ConfigError(f"--workers-per-gpu {workers_per_gpu}: works with --gpus (workers sharing each GPU); "
                          f"add --gpus all, or leave --workers-per-gpu out")
    for flag, v in (("--workers-per-gpu", workers_per_gpu), ("--threads", threads)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ConfigError(f"{flag} {v!r}: expected a positive integer, e.g. {flag} 2")
    given = {"workers": workers, "gpus": gpus, "workers_per_gpu": workers_per_gpu, "threads": threads, "scheduler": scheduler,
             "jit_epochs": bool(jit_epochs) or None}
    return {k: v for k, v in given.items() if v is not None}


def check_scheduler(address):
    """``--scheduler``: None, or an address of the form Dask accepts (``tcp://host:8786``,
    ``host:8786``, a port from 1 to 65535); checked with the other arguments, before the data is
    loaded, by ``--plan`` as by the run."""
    if address is None:
        return None
    bad = EngineError(f"--scheduler {address!r}: expected a Dask scheduler address such as tcp://host:8786")
    if not isinstance(address, str) or not address.strip():
        raise bad
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme in ("tcp", "tls", "ws", "wss"):
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise bad
    elif scheme != "inproc":
        raise bad
    return address


def probe(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A one-line :class:`EngineError` within ``timeout`` unless a Dask scheduler answers at
    ``address`` (a refused port at once; another kind of server, or silence, after ``timeout``).
    The study calls it before the data loads; :func:`connect` again before it trains."""
    check_scheduler(address)
    hint = "start one (dask scheduler, or the SLURM/Kubernetes recipes in docs/scale.md) or drop --scheduler to train here"
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if host and port.isdigit():  # a plain TCP probe answers 'refused' at once; Dask retries until its timeout
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except OSError as exc:
            raise EngineError(f"--scheduler {address}: nothing answers there ({exc.strerror or type(exc).__name__}); {hint}") from None
    kind = identity(address, timeout)
    if kind != "Scheduler":
        what = "nothing that speaks Dask" if kind is None else f"a Dask {kind}, not a scheduler"
        raise EngineError(f"--scheduler {address}: {what} answered within {timeout:g}s (is it another server's port?); {hint}")


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S):
    """A client of an existing Dask scheduler, or a one-line :class:`EngineError` in ``timeout``."""
    from distributed import Client

    probe(address, timeout)
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise EngineError(f"--scheduler {address}: no Dask scheduler answered within {timeout:g}s ({type(exc).__name__}); "
                          "start one or drop --scheduler to train here") from None


def identity(address: str, timeout: float) -> str | None:
    """What answers Dask's ``identity`` call at ``address`` within ``timeout`` seconds:
    ``"Scheduler"``, another Dask server's type, or None (no answer, or not Dask: an HTTP server
    on that port takes the connection and never replies, where a Client would wait forever)."""
    import asyncio

    from distributed.comm import connect as dask_connect

    async def ask():
        comm = await asyncio.wait_for(dask_connect(address, timeout=timeout), timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity"}), timeout)
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    try:
        reply = asyncio.run(ask())
    except Exception:  # noqa: BLE001 - a timeout, a refused or garbled handshake: not a scheduler
        return None
    return reply.get("type") if isinstance(reply, dict) else None


def dashboard(client) -> str | None:
    """The dashboard's address, or None where the scheduler serves none (bokeh not installed)."""
    import importlib.util

    if client.scheduler_info().get("services", {}).get("dashboard") is None:
        return None
    if client.cluster is not None and importlib.util.find_spec("bokeh") is None:
        return None  # a local scheduler without bokeh answers 404 on that port
    return client.dashboard_link
