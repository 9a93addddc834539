"""Train a study's plan: in this process, or on Dask workers (one machine, a cluster, GPUs).

A plan (:func:`fer_utils.study.experiments.plan`) lists runs, of any model; each run is deterministic, keyed by its
configuration, file-locked and resumable (:mod:`fer_utils.training.trainer`), so training one is an
idempotent task. This module only hands those tasks out, longest first (epochs left x FLOPs
per image), and reports progress. Dask is the engine (DESIGN.md: no home-made scheduler):

* ``workers=None, scheduler=None``: one run after another in this process.
* ``workers=N``: a local Dask cluster of N worker PROCESSES (``cores // N`` threads each, set
  before the backend loads); ``gpus="all"`` or ``gpus=K``: one worker per GPU
  (``CUDA_VISIBLE_DEVICES``), and ``workers_per_gpu=W`` workers sharing each GPU (JAX memory
  fraction ~0.9/W, no preallocation).
* ``scheduler="tcp://host:8786"``: an existing cluster (``dask-jobqueue`` on SLURM/PBS/...,
  ``dask-kubernetes``); its workers must see the run store (a shared ``FER_HOME``).

Why a killed worker changes nothing: Dask reschedules its task (``retries``, and the
scheduler's allowed failures), the run resumes from its checkpoint, and since every epoch's
randomness derives from (seed, epoch) only, the history is the one a sequential run writes.
Why two studies on one store never train an epoch twice: a run is trained under its lock; a
task that finds the lock taken waits (or, in this process, does other runs first) and then
finds the epochs done.

Progress: one line per finished epoch, written by the process that trained it (workers send
their lines to the client through Dask's event pub-sub), and a bar of epochs and runs done.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import socket
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from fer_utils.errors import FerError, RunStoreError
from fer_utils.training.clusters import (
    DEFAULT_RETRIES,
    EngineError,
    connect,
    dashboard,
    gpu_ids,
    local_cluster,
    worker_envs,
)

# ---------------------------------------------------------------------------------------------
# The order of a plan: longest first, by analytic FLOPs (each model family counts its own)


def ordered(plan: dict) -> list[dict]:
    """The plan's runs that still need epochs, longest first (epochs left x FLOPs per image);
    a run's optional ``priority`` (higher first) comes before its length."""
    todo = [r for r in plan["runs"] if r.get("to_train", r["epochs"]) > 0]
    from fer_utils.models.registry import train_flops
    from fer_utils.training.config import RunConfig

    cost = {r["run_id"]: r.get("to_train", r["epochs"]) * train_flops(RunConfig.from_dict({"data": "", **r["config"]})) for r in todo}
    return sorted(todo, key=lambda r: (-r.get("priority", 0), -cost[r["run_id"]], r["run_id"]))


# ---------------------------------------------------------------------------------------------
# One task: bring one run to its epochs (runs on a worker, or in this process)

_DATA: dict = {}


class Busy(Exception):
    """The run is locked by another process (returned to the caller, never to the user)."""


def data_paths(data_path) -> str | tuple[str, ...]:
    """A plan's data, resolved: one path (a string), or several (a tuple: a mixture of sets,
    :func:`fer_utils.data.mixture.load_many`, in the order given; the order is part of its fingerprint)."""
    if isinstance(data_path, (list, tuple)):
        if not data_path:
            raise EngineError("no data set given to train on; pass a data set folder or .zip")
        out = tuple(str(Path(p).expanduser().resolve()) for p in data_path)
        return out[0] if len(out) == 1 else out
    return str(Path(data_path).expanduser().resolve())


def _dataset(data_path, image_size, cache_dir):
    key = (data_path if isinstance(data_path, tuple) else str(data_path), int(image_size), cache_dir)
    if key not in _DATA:
        from fer_utils.training import backend
        from fer_utils.data.mixture import load_many
        from fer_utils import paths

        backend.quiet()
        if cache_dir:
            paths.CACHE_DIR = Path(cache_dir)
        while len(_DATA) >= 2:  # two sizes per process at most (a plan of two models): full RAF-DB is ~750 MB at 128 px
            _DATA.pop(next(iter(_DATA)))
        _DATA[key] = load_many(data_path, image_size=int(image_size), progress=False, verbose=False)  # a path, or a tuple of them
    return _DATA[key]


def lock_busy(run_dir: Path) -> bool:
    """Whether another process holds the run's training lock right now."""
    from fer_utils.training.rundir import LOCK

    lock = Path(run_dir) / LOCK
    if not lock.exists():
        return False
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def run_complete(run_dir: Path, spec: dict) -> bool:
    """Every epoch trained and every kept epoch evaluated: nothing to do, no data needed."""
    from fer_utils.training.rundir import read_history, read_metrics

    if len(read_history(run_dir)) < spec["epochs"]:
        return False
    done = read_metrics(run_dir).get("evaluations", {})
    return all(str(e) in done for e in spec["keep"] if e <= spec["epochs"])


def plan_entry(cfg, epochs: int, store_root, **extra) -> dict:
    """One run of a plan (the engine's input): run_id, config, epochs, keep (its last epoch), done
    (epochs in the store; all of them once the last is scored), to_train; ``extra`` (e.g. ``tables``) added."""
    from fer_utils.training import rundir

    d = Path(store_root) / cfg.run_id
    finished = str(epochs) in rundir.read_metrics(d).get("evaluations", {})
    done = epochs if finished else min(len(rundir.read_history(d)), epochs)
    return {"run_id": cfg.run_id, "config": cfg.to_dict(), "epochs": epochs, "keep": [epochs], **extra,
            "done": done, "to_train": epochs - done}


class _Lines(io.TextIOBase):
    """A stdout that hands each complete line to ``emit`` (the epoch log of train_run)."""

    def __init__(self, emit):
        self.emit, self.buf = emit, ""

    def write(self, s):
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            if line.strip():
                self.emit(line)
        return len(s)


def store_problem(store_root) -> str | None:
    """Why this process cannot use the run store (None: it can). Runs on every worker."""
    root = Path(store_root)
    if not root.is_dir():
        return f"{socket.gethostname()}: the run store {root} does not exist on this worker"
    probe = root / f".probe-{uuid.uuid4().hex}"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return f"{socket.gethostname()}: cannot write in the run store {root} ({exc.strerror})"
    return None


def train_one(spec: dict, *, data_path, store_root, cache_dir=None, emit=None, wait: bool = True, jit_epochs: bool = False) -> dict:
    """Bring one run of a plan, of any model, to its epochs (train only what is missing);
    return a summary. The data set is loaded at the run's own image size.

    ``emit(line)`` receives train_run's log lines (one per finished epoch); ``wait``: when
    another process holds the run's lock, wait for it (True) or raise :class:`Busy`.
    """
    from fer_utils.training.config import RunConfig
    from fer_utils.training.store import RunStore

    problem = store_problem(store_root)
    if problem:
        raise EngineError(f"{problem}: workers must share the run store (set FER_HOME to a shared filesystem on every worker)")
    cfg = RunConfig.from_dict(spec["config"])
    store = RunStore(store_root)
    run_dir = store.path(cfg)
    t0, trained = time.perf_counter(), 0
    if emit is None:
        try:
            from distributed import get_worker

            worker = get_worker()
            topic = spec.get("_topic", "fer-epochs")
            emit = lambda line: worker.log_event(topic, line)  # noqa: E731
        except ValueError:  # not on a Dask worker
            emit = print

    def counting(line):
        nonlocal trained
        trained += "] epoch " in line
        emit(line)

    while not run_complete(run_dir, spec):
        if lock_busy(run_dir):
            if not wait:
                raise Busy(cfg.run_id)
            time.sleep(1.0)
            continue
        data = _dataset(data_path, cfg.image_size, cache_dir)
        try:
            with contextlib.redirect_stdout(_Lines(counting)):
                store.ensure(cfg, spec["epochs"], data, keep_epochs=spec["keep"], verbose=True, jit_epochs=jit_epochs)
        except RunStoreError:
            if not lock_busy(run_dir):  # lost the race for the lock: loop; anything else is real
                raise
    return {"run_id": cfg.run_id, "epochs_trained": int(trained), "seconds": time.perf_counter() - t0,
            "where": f"{socket.gethostname()}:{os.getpid()}"}


# ---------------------------------------------------------------------------------------------
# The plan


class _Progress:
    """Epoch lines on the terminal (above the bar), the bar, and when each epoch finished."""

    def __init__(self, plan_runs: list[dict], enabled: bool, desc: str = "study"):
        from tqdm import tqdm

        self.n_runs, self.enabled, self.runs_done, self.epoch_times = len(plan_runs), enabled, 0, []
        self.out = sys.stdout  # the terminal's, not a redirected one (train_one redirects its own)
        self.bar = tqdm(total=sum(r["to_train"] for r in plan_runs), desc=desc, unit="epoch", disable=not enabled, mininterval=0.5)
        self.lock = threading.Lock()
        self.run_done(0)

    def line(self, line: str):
        with self.lock:
            if self.enabled:
                self.bar.write(line, file=self.out)
            if "] epoch " in line:
                self.epoch_times.append((time.time(), line[1:].split("]", 1)[0]))
                self.bar.update(1)

    def run_done(self, n: int = 1):
        with self.lock:
            self.runs_done += n
            self.bar.set_postfix_str(f"runs {self.runs_done}/{self.n_runs}", refresh=True)


def train_plan(plan: dict, *, data_path, store_root=None, workers: int | None = None,
               scheduler: str | None = None, gpus=None, workers_per_gpu: int = 1, threads: int | None = None,
               retries: int = DEFAULT_RETRIES, progress: bool = True, data=None, deadline: float | None = None,
               jit_epochs: bool = False) -> dict:
    """Train every run of ``plan`` to its epochs; return a summary.

    The plan's runs may be of any model (:mod:`fer_utils.models.registry`). ``data_path``: what
    each worker loads (once per process and image size, through the decode cache): a data set, or a
    list of several for runs on a mixture (as ``fer train --data A --data B`` loads them); ``data``: an
    already-loaded Dataset, used by the sequential path for the runs at its image size. ``store_root``:
    the run store (default :data:`fer_utils.paths.RUNS_DIR`). ``workers`` / ``gpus`` /
    ``workers_per_gpu``: a local Dask cluster (``threads``: intra-op threads per worker, default
    cores // workers); ``scheduler``: an existing one. None of them: sequentially in this
    process. The plan's optional ``name`` labels the progress bar (default "study"). ``deadline`` (a ``time.time()``): stop handing out runs then, and stop the local
    workers (their runs resume from their checkpoints next time). Returns ``{"runs",
    "runs_trained", "epochs_trained", "epochs_total", "seconds", "engine", "workers",
    "dashboard", "stopped", "results", "epoch_times"}``.
    """
    from fer_utils import paths

    store_root = Path(store_root if store_root is not None else paths.RUNS_DIR).resolve()
    store_root.mkdir(parents=True, exist_ok=True)
    data_path = data_paths(data_path)
    if scheduler and (workers or gpus):
        raise EngineError("--scheduler with --workers/--gpus: the cluster's own workers train; drop --workers/--gpus (or --scheduler for a local cluster)")
    todo, t0 = ordered(plan), time.perf_counter()
    summary = {"runs": len(plan["runs"]), "runs_trained": 0, "epochs_trained": 0, "epochs_total": sum(r["to_train"] for r in todo),
               "engine": "sequential", "workers": 1, "dashboard": None, "stopped": False, "results": [], "epoch_times": []}
    if todo:
        bar = _Progress(todo, progress, desc=plan.get("name", "study"))
        task = dict(data_path=data_path, store_root=str(store_root), jit_epochs=bool(jit_epochs))
        try:
            if scheduler is None and workers is None and gpus is None:
                _sequential(todo, bar, summary, task, data, deadline)
            else:
                _on_dask(todo, bar, summary, task, deadline, workers=workers, scheduler=scheduler, gpus=gpus,
                         workers_per_gpu=workers_per_gpu, threads=threads, retries=retries)
        finally:
            bar.bar.close()
            summary["epoch_times"] = bar.epoch_times
    summary["runs_trained"] = sum(1 for r in summary["results"] if r["epochs_trained"])
    summary["epochs_trained"] = sum(r["epochs_trained"] for r in summary["results"])
    summary["seconds"] = time.perf_counter() - t0
    if progress:
        end = "stopped at the deadline; run again to resume" if summary["stopped"] else f"every epoch of the plan's {summary['runs']} runs is in the store"
        print(f"Trained {summary['epochs_trained']} epochs of {summary['runs_trained']} runs in {summary['seconds']:.0f}s "
              f"({summary['engine']}, {summary['workers']} worker(s)); {end}", flush=True)
    return summary


def _sequential(todo, bar, summary, task, data, deadline):
    if data is not None:
        _DATA.clear()
        _DATA[(task["data_path"], int(data.image_size), None)] = data
    queue, first_busy = deque(todo), None
    while queue:
        if deadline is not None and time.time() >= deadline:
            summary["stopped"] = True
            return
        spec = queue.popleft()
        try:
            summary["results"].append(train_one(spec, **task, emit=bar.line, wait=False))
            bar.run_done()
            first_busy = None
        except Busy:  # another study trains it now: do the others first, then come back
            queue.append(spec)
            if first_busy is None:
                first_busy = spec["run_id"]
            elif first_busy == spec["run_id"]:  # a full round of busy runs: wait a little
                time.sleep(1.0)


def _on_dask(todo, bar, summary, task, deadline, *, workers, scheduler, gpus, workers_per_gpu, threads, retries):
    from distributed import Client, as_completed

    from fer_utils import paths

    cluster = None
    if scheduler:
        client = connect(scheduler)
        summary["engine"], cache_dir = f"dask scheduler {scheduler}", None  # workers use their FER_HOME's cache
    else:
        envs = worker_envs(workers, gpu_ids(gpus), workers_per_gpu, threads=threads)
        cluster = local_cluster(envs, retries=retries)
        client = Client(cluster)
        summary["engine"] = "dask local cluster" + (f" on {len({e['CUDA_VISIBLE_DEVICES'] for e in envs})} GPU(s)" if gpus else "")
        cache_dir = str(Path(paths.CACHE_DIR).resolve())
    try:
        summary["dashboard"], summary["workers"] = dashboard(client), len(client.scheduler_info()["workers"])
        if bar.enabled:
            print(f"Dask: {summary['workers']} worker(s); dashboard: {summary['dashboard'] or 'not served (install bokeh)'}", flush=True)
        try:
            problems = [p for p in client.run(store_problem, task["store_root"]).values() if p]
        except Exception as exc:  # noqa: BLE001 - e.g. ModuleNotFoundError on a worker
            raise EngineError(f"the Dask workers cannot run fer_utils ({type(exc).__name__}: {exc}); install this project in the "
                              f"workers' environment (pip install -e /path/to/project) with the same Keras backend") from None
        if problems:
            raise EngineError(f"{problems[0]}: workers must share the run store (set FER_HOME to a shared filesystem on every worker)")
        topic = f"fer-epochs-{uuid.uuid4().hex[:8]}"
        client.subscribe_topic(topic, lambda event: bar.line(event[1]))
        futures = [client.submit(train_one, dict(spec, _topic=topic), **task, cache_dir=cache_dir, retries=retries,
                                 priority=len(todo) - i, pure=False, key=f"train-{spec['run_id']}-{uuid.uuid4().hex[:6]}")
                   for i, spec in enumerate(todo)]
        errors = []
        try:
            for fut in as_completed(futures, timeout=None if deadline is None else max(1.0, deadline - time.time())):
                try:
                    summary["results"].append(fut.result())
                    bar.run_done()
                except Exception as exc:  # noqa: BLE001 - collected and raised as one error below
                    errors.append((fut.key, exc))
        except TimeoutError:
            summary["stopped"] = True
            client.cancel(futures)
        time.sleep(0.3)  # the last epoch lines are still on their way
        if errors:
            key, exc = errors[0]
            if isinstance(exc, FerError) and len(errors) == len(futures):
                raise exc
            raise EngineError(f"{len(errors)} of {len(futures)} runs failed; first: {key}: {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=30)
