"""The files of one run directory, and nothing else knows their names or formats.

``config.json``        the :class:`~fer_utils.training.config.RunConfig` (``to_dict``), of any model
``history.csv``        one row per finished epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds
``checkpoint.keras``   the model and optimizer after the last epoch of the history (for resuming)
``checkpoint.next.keras`` the next epoch's checkpoint, between its save and its history row
``model-eNNNN.keras``  the model after epoch NNNN, kept for the epoch counts a table asked for
``metrics.json``       per kept epoch: final-row metrics, the model's scores, provenance (+ cost)
``.lock``              held while a process trains the run

Every write is atomic. Every read of a damaged file raises :class:`RunStoreError` naming the file
and the fix; nothing here ever deletes a run. :mod:`fer_utils.training.trainer` writes a run through these
functions, :mod:`fer_utils.training.store` (the store) reads it through them.
"""

from __future__ import annotations

import csv
import fcntl
from contextlib import contextmanager
from pathlib import Path

from fer_utils.atomic import atomic_write_json, atomic_write_text
from fer_utils.errors import RunStoreError
from fer_utils.jsonfile import read_json

CONFIG = "config.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.keras"
NEXT_CHECKPOINT = "checkpoint.next.keras"
LOCK = ".lock"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def _fix(run_dir) -> str:
    return f"delete the run folder {run_dir} to retrain it (or restore the file from a backup)"


def model_file(run_dir, epochs: int) -> Path:
    """Where the model kept after ``epochs`` epochs lives (it may not exist)."""
    return Path(run_dir) / f"model-e{int(epochs):04d}.keras"


def checkpoint_file(run_dir) -> Path:
    return Path(run_dir) / CHECKPOINT


def save_checkpoint(run_dir, model) -> None:
    """Step 1 of ending an epoch: save the model and optimizer as the NEXT checkpoint. Step 2 is
    the epoch's history row (:func:`write_history`), step 3 :func:`commit_checkpoint`. A kill
    between any two steps resumes right (:func:`load_checkpoint`): neither an epoch trained
    twice on top of itself nor a history row without its weights."""
    from fer_utils.atomic import atomic_save_model

    atomic_save_model(model, Path(run_dir) / NEXT_CHECKPOINT)


def commit_checkpoint(run_dir) -> None:
    """Step 3: the next checkpoint becomes THE checkpoint (one atomic rename)."""
    Path(run_dir, NEXT_CHECKPOINT).replace(Path(run_dir) / CHECKPOINT)


def load_checkpoint(run_dir, epochs_done: int, steps_per_epoch: int):
    """The model and optimizer after ``epochs_done`` epochs (the history's length). A next
    checkpoint left by a kill is committed when its optimizer has taken exactly
    ``epochs_done * steps_per_epoch`` steps (its history row landed), else removed (its row did
    not: that epoch is trained again from the checkpoint before it)."""
    run_dir = Path(run_dir)
    nxt = run_dir / NEXT_CHECKPOINT
    if nxt.exists():
        try:
            model = load_keras(nxt, "next checkpoint")
            import keras

            steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        except (RunStoreError, AttributeError, TypeError, ValueError):
            model, steps = None, -1  # damaged while it was being written: the epoch is redone
        if model is not None and steps == epochs_done * steps_per_epoch:
            commit_checkpoint(run_dir)
            return model
        nxt.unlink()
    ckpt = run_dir / CHECKPOINT
    if not ckpt.exists():
        raise RunStoreError(f"{run_dir}: has {epochs_done} epochs of history but no {CHECKPOINT} to resume from; "
                            f"delete the run folder {run_dir} to retrain it")
    return load_keras(ckpt, "checkpoint")


def kept_models(run_dir) -> list[Path]:
    """The kept models of a run, oldest epoch first."""
    return sorted(Path(run_dir).glob("model-e[0-9][0-9][0-9][0-9].keras"))


def is_run(run_dir) -> bool:
    return (Path(run_dir) / CONFIG).exists()


def read_config(run_dir) -> dict | None:
    """The stored configuration as a dict (None when the run has none yet)."""
    return read_json(Path(run_dir) / CONFIG, {"data": str, "model?": str}, what="a run configuration (a JSON object with "
                     "'data', 'lr', ...)", fix=_fix(run_dir), error=RunStoreError, missing=None)


def write_config(run_dir, config: dict) -> None:
    atomic_write_json(Path(run_dir) / CONFIG, config)


def read_history(run_dir) -> list[dict]:
    """The finished epochs, in order (``[]`` for a new run)."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return []
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != HISTORY_COLUMNS:
                raise ValueError("header")
            rows = [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in reader]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error):
        raise RunStoreError(
            f"{path}: not a history this package wrote (expected the columns {','.join(HISTORY_COLUMNS)}, "
            f"one number per cell); {_fix(run_dir)}"
        ) from None
    for i, r in enumerate(rows, 1):
        if r["epoch"] != i:
            raise RunStoreError(f"{path}: epochs are not 1..{len(rows)} in order (row {i} says {r['epoch']}); {_fix(run_dir)}")
    return rows


def write_history(run_dir, rows: list[dict]) -> None:
    lines = [",".join(HISTORY_COLUMNS)]
    for r in rows:
        lines.append(",".join(str(r["epoch"]) if k == "epoch" else repr(float(r[k])) for k in HISTORY_COLUMNS))
    atomic_write_text(Path(run_dir) / HISTORY, "\n".join(lines) + "\n")


def read_metrics(run_dir) -> dict:
    d = read_json(Path(run_dir) / METRICS, {"evaluations?": dict}, what="the metrics of a run (a JSON object with "
                  "'evaluations')", fix=_fix(run_dir), error=RunStoreError, missing=None)
    if d is None:
        return {"evaluations": {}}
    d.setdefault("evaluations", {})
    return d


def write_metrics(run_dir, metrics: dict) -> None:
    atomic_write_json(Path(run_dir) / METRICS, metrics)


def load_keras(path, what: str = "model"):
    """Load a ``.keras`` file of a run; a damaged one is a one-line :class:`RunStoreError`."""
    from fer_utils.models.registry import read_keras

    path = Path(path)
    try:
        return read_keras(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read it means the file is damaged
        raise RunStoreError(
            f"{path}: the {what} cannot be read ({type(exc).__name__}; a truncated or damaged file); "
            f"{_fix(path.parent)}"
        ) from None


@contextmanager
def locked(run_dir):
    """Hold the run's lock (another process training the same run is refused, not waited for)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunStoreError(f"{run_dir}: another process is training this run right now; wait for it or stop it") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
