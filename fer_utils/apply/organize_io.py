"""OUTPUT's bookkeeping for :mod:`fer_utils.apply.organize`: the journal a resumed run reads, the
state that ties OUTPUT to one model and its settings, copies that never overwrite another file,
and CSVs rewritten only when their bytes change (so a second run leaves OUTPUT untouched).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path, PurePosixPath

from fer_utils.atomic import atomic_write_bytes, atomic_write_json
from fer_utils.errors import FerError

PREDICTIONS_CSV = "predictions.csv"
ERRORS_CSV = "errors.csv"
JOURNAL = ".organize-journal.csv"
STATE = ".organize-state.json"
UNCERTAIN_DIR = "_uncertain"
SHEETS_DIR = "_sheets"  # contact sheets (fer_utils.study.figures), under OUTPUT like everything else


# --------------------------------------------------------------------------------------------
# Journal and state


def columns(class_names):
    return ["source", "destination", "predicted", "confidence", *[f"p_{c}" for c in class_names]]


def read_journal(path: Path, class_names) -> dict[str, tuple[str, list[str]]]:
    """source -> (stamp, prediction row). A torn last line (interrupted write) is dropped."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(text)))
    want = ["stamp", *columns(class_names)]
    if not rows or rows[0] != want:
        raise FerError(f"{path}: unexpected header; expected {','.join(want)}. Delete it to sort again from scratch")
    done = {}
    for row in rows[1:]:
        if len(row) == len(want):
            done[row[1]] = (row[0], row[1:])  # a later row for the same source wins
    return done


def check_state(output: Path, state: dict) -> None:
    path = output / STATE
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            raise FerError(f"{path}: unreadable state file; expected JSON written by organize. Delete it to sort into "
                           f"{output} again (the copies there are kept)") from None
        diff = sorted(k for k in state if old.get(k) != state[k])
        if diff:
            raise FerError(
                f"{output}: already organized with different {', '.join(diff)} "
                f"(was {', '.join(f'{k}={old.get(k)!r}' for k in diff)}). Sorting into it again would mix two "
                f"runs; pass a new output folder, or delete {output} to start over"
            )
    else:
        atomic_write_json(path, state)


# --------------------------------------------------------------------------------------------
# Copies


def remove_stale_temps(output: Path) -> None:
    """Delete temporary copies a killed run left behind (``.<name>.<pid>.tmp``, ours only)."""
    for dirpath, _, filenames in os.walk(output):
        for f in filenames:
            if f.startswith(".") and f.endswith(".tmp") and f[:-4].rsplit(".", 1)[-1].isdigit():
                try:
                    os.unlink(os.path.join(dirpath, f))
                except OSError:
                    pass


def same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def pick_destination(output: Path, rel_dest: str, data: bytes, taken: set[str], own: str | None = None) -> tuple[str, bool]:
    """A destination for ``data`` that never overwrites a different file: ``rel_dest`` itself,
    else ``name (2).ext``, ``name (3).ext``... ``own`` is this input's copy from an earlier run,
    which it may replace. Returns (destination, already there)."""
    p = PurePosixPath(rel_dest)
    suffixes = "".join(p.suffixes[-1:])
    stem = p.name[: len(p.name) - len(suffixes)] if suffixes else p.name
    k = 1
    while True:
        cand = rel_dest if k == 1 else str(p.with_name(f"{stem} ({k}){suffixes}"))
        k += 1
        if cand in taken:
            continue
        target = output / cand
        if cand == own or not target.exists():
            return cand, target.exists() and same_bytes(target, data)
        if same_bytes(target, data):
            return cand, True


def atomic_copy(data: bytes, target: Path, mtime_ns: int | None) -> None:
    """Temp file + os.replace: an interrupted copy never leaves a half file under its name.
    No fsync per image (the journal is fsynced per batch, and resuming checks the size)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, target)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def drop_own_copy(output: Path, mine, new_dest) -> None:
    """Remove the earlier copy of a changed input (when it moved, or now fails), but only while
    it is still the file we wrote (same size as journalled): never someone else's file."""
    if mine is None or mine[0] == new_dest:
        return
    old = output / mine[0]
    if copy_intact(old, mine[1]):
        old.unlink()


def was_renamed(row) -> bool:
    source, dest = row[0], row[1]
    tail = dest.split("/", 2 if dest.startswith(UNCERTAIN_DIR + "/") else 1)[-1]
    return tail != source


def copy_intact(path: Path, stamp: str) -> bool:
    try:
        return path.stat().st_size == int(stamp.split(":", 1)[0])
    except (OSError, ValueError):
        return False


def write_csv(path: Path, header, rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    if not same_bytes(path, data):  # a repeated run leaves even the modification time alone
        atomic_write_bytes(path, data)


def read_predictions(output):
    """``OUTPUT/predictions.csv`` as a DataFrame (probabilities as floats)."""
    import pandas as pd

    path = Path(output) / PREDICTIONS_CSV
    if not path.exists():
        raise FerError(f"{path}: no predictions; run organize(input, {output}, model) first")
    return pd.read_csv(path, keep_default_na=False)
