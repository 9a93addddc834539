"""The files of one run directory, and nothing else knows their names or formats.

``config.json``        the :class:`~fer_utils.config.RunConfig` (``to_dict``)
``history.csv``        one row per finished epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds
``checkpoint.keras``   the model and optimizer after the last finished epoch (for resuming)
``model-eNNNN.keras``  the model after epoch NNNN, kept for the epoch counts a table asked for
``metrics.json``       per kept epoch: final-row metrics, the test evaluation, provenance
``.lock``              held while a process trains the run

Every write is atomic. Every read of a damaged file raises :class:`RunStoreError` naming the file
and the fix; nothing here ever deletes a run. :mod:`fer_utils.train` writes a run through these
functions, :mod:`fer_utils.runs` (the store) reads it through them.
"""

from __future__ import annotations

import csv
import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

from .atomic import atomic_write_json, atomic_write_text
from .errors import RunStoreError

CONFIG = "config.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.keras"
LOCK = ".lock"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def _fix(run_dir) -> str:
    return f"delete the run folder {run_dir} to retrain it (or restore the file from a backup)"


def model_file(run_dir, epochs: int) -> Path:
    """Where the model kept after ``epochs`` epochs lives (it may not exist)."""
    return Path(run_dir) / f"model-e{int(epochs):04d}.keras"


def checkpoint_file(run_dir) -> Path:
    return Path(run_dir) / CHECKPOINT


def kept_models(run_dir) -> list[Path]:
    """The kept models of a run, oldest epoch first."""
    return sorted(Path(run_dir).glob("model-e[0-9][0-9][0-9][0-9].keras"))


def is_run(run_dir) -> bool:
    return (Path(run_dir) / CONFIG).exists()


def read_config(run_dir) -> dict | None:
    """The stored configuration as a dict (None when the run has none yet)."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise RunStoreError(f"{path}: not valid JSON (a damaged run); {_fix(run_dir)}") from None
    if not isinstance(d, dict) or "data" not in d:
        raise RunStoreError(f"{path}: not a run configuration (expected a JSON object with 'data', 'lr', ...); {_fix(run_dir)}")
    return d


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
    path = Path(run_dir) / METRICS
    if not path.exists():
        return {"evaluations": {}}
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise RunStoreError(f"{path}: not valid JSON (a damaged run); {_fix(run_dir)}") from None
    if not isinstance(d, dict) or not isinstance(d.get("evaluations", {}), dict):
        raise RunStoreError(f"{path}: not the metrics of a run (expected a JSON object with 'evaluations'); {_fix(run_dir)}")
    d.setdefault("evaluations", {})
    return d


def write_metrics(run_dir, metrics: dict) -> None:
    atomic_write_json(Path(run_dir) / METRICS, metrics)


def load_keras(path, what: str = "model"):
    """Load a ``.keras`` file of a run; a damaged one is a one-line :class:`RunStoreError`."""
    import keras

    path = Path(path)
    try:
        return keras.saving.load_model(path)
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
