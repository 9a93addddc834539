"""The run store: ``results/runs/<run id>/``, one folder per configuration of any model.

Asking for E epochs of a configuration that already has E or more costs nothing; asking for
more continues the stored run (:func:`fer_utils.training.trainer.train_run` does the work). The files of a
run folder are read and named by :mod:`fer_utils.training.rundir` only; everyone else asks a
:class:`Run` (``run.model_path()``, ``run.row(e)``) or the :class:`RunStore`
(``store.latest()``), never builds a path inside a run by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fer_utils import paths

from fer_utils.training import rundir
from fer_utils.training.config import RunConfig
from fer_utils.errors import FerError, RunStoreError
from fer_utils.training.scoring import final_row
from fer_utils.training.trainer import train_run


@dataclass
class Run:
    id: str
    dir: Path
    config: RunConfig | None
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=lambda: {"evaluations": {}})
    #: epochs trained by the call that returned this run (``RunStore.ensure``); 0: nothing trained
    trained_now: int = 0
    #: why the run cannot be read (only from ``RunStore.runs(include_corrupt=True)``); None: fine
    problem: str | None = None

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    def row(self, epochs: int) -> dict:
        """The report's columns at epoch ``epochs`` (1-based)."""
        if epochs > len(self.history):
            raise RunStoreError(f"{self.dir}: has {len(self.history)} epochs, {epochs} were asked for; train it further first")
        return final_row(self.history[epochs - 1])

    def evaluation(self, epochs: int) -> dict | None:
        return self.metrics.get("evaluations", {}).get(str(epochs))

    def kept_epochs(self) -> list[int]:
        """Epoch counts whose model was kept, in order."""
        return [int(p.stem[len("model-e"):]) for p in rundir.kept_models(self.dir)]

    def model_path(self, epochs: int | None = None, *, must_exist: bool = False) -> Path:
        """The kept model after ``epochs`` epochs (default: the latest kept one, which must
        exist). With ``must_exist``, a model that was not kept at ``epochs`` raises a
        :class:`RunStoreError` listing the kept epochs."""
        if epochs is None:
            kept = rundir.kept_models(self.dir)
            if not kept:
                raise RunStoreError(f"{self.dir}: no kept model; train the run first")
            return kept[-1]
        path = rundir.model_file(self.dir, epochs)
        if must_exist and not path.exists():
            kept = self.kept_epochs()
            raise RunStoreError(
                f"{self.dir}: no model kept at epoch {epochs} (kept: {', '.join(map(str, kept)) or 'none'}; "
                f"{self.epochs_done} epochs trained); ask for one of the kept epoch counts"
            )
        return path

    def summary(self) -> dict:
        """What ``fer runs`` shows: model, data set (name and fingerprint), selection, epochs
        done, and the holdout and test accuracy of the latest scored epoch (None: not measured)."""
        evals = self.metrics.get("evaluations", {})
        last = max(evals, key=int) if evals else None
        ev = evals.get(last, {}) if last else {}
        holdout = (ev.get("holdout") or {}).get("accuracy")
        if holdout is None and self.config.selection == "holdout" and "final_row" in ev:
            holdout = ev["final_row"].get("Val_accuracy")  # the report's CNN validates on the holdout
        return {"run_id": self.id, "model": self.config.model, "data": self.metrics.get("data_source"),
                "fingerprint": self.config.data, "selection": self.config.selection, "epochs": self.epochs_done,
                "scored_epoch": int(last) if last else None, "holdout_accuracy": holdout,
                "test_accuracy": (ev.get("test") or {}).get("accuracy")}

    def wall_seconds(self, epochs: int | None = None) -> float:
        rows = self.history if epochs is None else self.history[:epochs]
        return float(sum(r["seconds"] for r in rows))


def load_run(run_dir) -> Run:
    """The run stored in the folder ``run_dir`` (inside the store or not)."""
    d = Path(run_dir)
    cfg_dict = rundir.read_config(d)
    if cfg_dict is None:
        raise RunStoreError(f"{d}: no such run (no {rundir.CONFIG}); list runs with 'fer runs' or train it first")
    try:
        cfg = RunConfig.from_dict(cfg_dict)
    except (FerError, TypeError, ValueError) as exc:
        raise RunStoreError(f"{d / rundir.CONFIG}: not a configuration of this package ({exc}); "
                            f"delete the run folder {d} to retrain it") from None
    return Run(d.name, d, cfg, rundir.read_history(d), rundir.read_metrics(d))


#: A run id is one folder name: letters, digits, '.', '_', '-' (never a path, never '..').
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def check_run_id(run_id, where: str = "") -> str:
    """``run_id`` if it names one folder of a store, else a one-line RunStoreError: a table
    manifest or index that says ``../x`` must not make a command read or write outside the store.

    >>> check_run_id("d2-lr0.001-b64-s0-test-86c90c31fbfd")
    'd2-lr0.001-b64-s0-test-86c90c31fbfd'
    """
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise RunStoreError(f"{where + ': ' if where else ''}run id {run_id!r} is not a run folder's name (letters, digits, "
                            f"'.', '_', '-'; no path); the file was edited or damaged: restore it")
    return run_id


class RunStore:
    def __init__(self, root=None):
        self.root = Path(root) if root is not None else paths.RUNS_DIR

    def path(self, cfg: RunConfig) -> Path:
        return self.root / cfg.run_id

    def ensure(self, cfg: RunConfig, epochs=None, data=None, keep_epochs=(), verbose=True, *, run_dir=None, **train) -> Run:
        """The run of ``cfg`` with at least ``epochs`` epochs (None: a fixed-epoch family's
        recipe epochs), training only what is missing; ``train``: more of
        :func:`~fer_utils.training.trainer.train_run`'s options (``max_batches``, ``score_test``).

        ``run_dir`` puts the run in another folder than the store's (``fer train --run-dir``).
        The returned run's ``trained_now`` says how many epochs this call trained.
        """
        d = Path(run_dir) if run_dir is not None else self.path(cfg)
        before = len(rundir.read_history(d)) if d.is_dir() else 0
        train_run(d, cfg, data, epochs, keep_epochs=keep_epochs, verbose=verbose, **train)
        run = load_run(d)
        run.trained_now = max(0, run.epochs_done - before)
        return run

    def epochs_done(self, cfg: RunConfig) -> int:
        return len(rundir.read_history(self.path(cfg)))

    def load(self, run_id: str) -> Run:
        return load_run(self.root / check_run_id(run_id))

    def get(self, cfg: RunConfig) -> Run | None:
        return self.load(cfg.run_id) if rundir.is_run(self.path(cfg)) else None

    def runs(self, include_corrupt: bool = False, model: str | None = None) -> list[Run]:
        """Every run (of ``model`` only, when given), by id. A damaged run raises, or with
        ``include_corrupt`` is listed with its ``problem`` set (and no config)."""
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.iterdir()):
            if not rundir.is_run(p):
                continue
            try:
                run = self.load(p.name)
                if model is None or run.config.model == model:
                    out.append(run)
            except RunStoreError as exc:
                if not include_corrupt:
                    raise
                out.append(Run(p.name, p, None, problem=str(exc)))
        return out

    def latest(self) -> Run:
        """The run whose newest kept model is the most recent (ties: by path). Damaged runs are
        skipped; none with a kept model is a :class:`RunStoreError` saying what to do."""
        best, best_key = None, None
        for run in self.runs(include_corrupt=True):
            if run.problem:
                continue
            kept = rundir.kept_models(run.dir)
            if not kept:
                continue
            key = (kept[-1].stat().st_mtime_ns, str(kept[-1]))
            if best_key is None or key > best_key:
                best, best_key = run, key
        if best is None:
            raise RunStoreError(
                f"{self.root}: no trained model (no run with a kept model). Run the experiments first "
                f"('make report' or 'fer train --data PATH'), or pass a model file"
            )
        return best


def convert_legacy_run(src, runs_root) -> Path:
    """Copy a run folder written by the old beyond trainer (``results/beyond/<id>/`` or a
    published ``beyond/run-eNN-sS/``: config.json ``{"beyond": {...}, "data", "model":
    "beyond_resnet"}``) into the one store ``runs_root`` under its run id of today's format
    (model ``resnet``); return the new folder. Every file and subfolder is copied, history and
    metrics byte for byte but for the metrics' ``run_id`` and ``model``; ``src`` is left as it
    was. A destination that already holds the same run is left alone (idempotent)."""
    import shutil

    from fer_utils.atomic import atomic_write_json

    src, runs_root = Path(src), Path(runs_root)
    stored = rundir.read_config(src)
    if stored is None or "beyond" not in stored:
        raise RunStoreError(f"{src / rundir.CONFIG}: not a run of the old beyond trainer (no 'beyond' key); nothing to convert")
    cfg = RunConfig.from_dict(stored)
    dest = runs_root / cfg.run_id
    if rundir.read_config(dest) == cfg.to_dict():
        return dest
    if dest.exists():
        raise RunStoreError(f"{dest}: exists and holds another run; move it away to convert {src}")
    tmp = runs_root / f".{cfg.run_id}.converting"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(rundir.LOCK))
    rundir.write_config(tmp, cfg.to_dict())
    metrics_path = tmp / rundir.METRICS
    if metrics_path.exists():
        metrics = rundir.read_metrics(tmp)
        metrics.update(run_id=cfg.run_id, model=cfg.model)
        atomic_write_json(metrics_path, metrics)
    tmp.replace(dest)
    return dest
