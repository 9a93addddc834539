"""OUTPUT's bookkeeping for :mod:`fer_utils.apply.organize`: the journal a resumed run reads, the
state that ties OUTPUT to one model and its settings, copies that never overwrite another file,
and CSVs rewritten only when their bytes change (so a second run leaves OUTPUT untouched); and
the checks of the model that sorts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path, PurePosixPath

import numpy as np

from fer_utils.atomic import atomic_write_bytes, atomic_write_json
from fer_utils.data.datasets import CLASS_NAMES
from fer_utils.errors import ConfigError, FerError

PREDICTIONS_CSV = "predictions.csv"
ERRORS_CSV = "errors.csv"
JOURNAL = ".organize-journal.csv"
STATE = ".organize-state.json"
UNCERTAIN_DIR = "_uncertain"
SHEETS_DIR = "_sheets"  # contact sheets (fer_utils.study.figures), under OUTPUT like everything else


# --------------------------------------------------------------------------------------------
# Journal and state


#: Where the destination is in a row of predictions.csv (see :func:`columns`).
DEST = 6


def columns(class_names):
    """predictions.csv's header: one row per FACE (``face`` 0, 1, ... in an image; its box in
    the image's pixels), the image's copy for that face's emotion, and the probabilities."""
    return ["source", "face", "x", "y", "width", "height", "destination", "predicted", "confidence",
            *[f"p_{c}" for c in class_names]]


def read_journal(path: Path, class_names) -> dict[str, tuple[str, list[list[str]]]]:
    """source -> (stamp, its rows, one per face). A torn last line (interrupted write) is
    dropped; an image's rows are journalled together, and a later group for the same source
    (the input changed) replaces the earlier one."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(text)))
    want = ["stamp", *columns(class_names)]
    if not rows or rows[0] != want:
        raise FerError(f"{path}: unexpected header; expected {','.join(want)}. Delete it to sort again from scratch")
    done: dict[str, tuple[str, list[list[str]]]] = {}
    for row in rows[1:]:
        if len(row) != len(want):
            continue
        stamp, rec = row[0], row[1:]
        if rec[1] == "0" or rec[0] not in done:
            done[rec[0]] = (stamp, [rec])  # face 0 starts the image's group
        else:
            done[rec[0]][1].append(rec)
    return done


def destinations(rows) -> list[str]:
    """The distinct copies an image's rows name, in order."""
    return list(dict.fromkeys(r[DEST] for r in rows))


def check_state(output: Path, state: dict) -> None:
    path = output / STATE
    if path.exists():
        from fer_utils.jsonfile import read_json

        old = read_json(path, dict, what="the state file organize writes",
                        fix=f"delete it to sort into {output} again (the copies there are kept)")
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


def drop_own_copy(output: Path, mine, new_dests) -> None:
    """Remove the earlier copies of a changed input (those it no longer has, or all when it
    now fails), but only while each is still the file we wrote (same size as journalled): never
    someone else's file. ``mine``: (earlier destinations, stamp)."""
    if mine is None:
        return
    for dest in mine[0]:
        if dest in (new_dests or ()):
            continue
        old = output / dest
        if copy_intact(old, mine[1]):
            old.unlink()


def was_renamed(row) -> bool:
    source, dest = row[0], row[DEST]
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


# --------------------------------------------------------------------------------------------
# The model


def resolve_model(model, class_names):
    """``(model, class_names, input side, channels)`` of a model or .keras path, checked for what
    sorting needs: one output per class name, names that can be folder names, a square input."""
    if isinstance(model, (str, os.PathLike)):
        from fer_utils.models.registry import load_model

        try:
            model, loaded = load_model(model, compile=False)
        except (ValueError, KeyError, TypeError) as exc:  # a damaged <model>.classes.json beside it
            side = f"{model}.classes.json"
            raise FerError(
                f"{side}: cannot read the class names ({type(exc).__name__}); expected JSON like "
                f'{{"class_names": ["Surprise", ...]}} as saved by \'fer train --save\'. Restore it, or delete it '
                f"to use RAF-DB's 7 names"
            ) from None
        class_names = class_names or loaded
    if hasattr(model, "load_size") and hasattr(model, "predict"):  # a predictor (the fer package's model)
        names = tuple(class_names or model.class_names)
        check_folder_names(names)
        return model, names, int(model.load_size), 3
    class_names = tuple(class_names or getattr(model, "class_names", None) or ())
    n_out = int(model.output_shape[-1])
    if not class_names:
        if n_out != len(CLASS_NAMES):
            raise ConfigError(
                f"the model has {n_out} outputs and no class names; expected a model with one output per emotion "
                f"(7), saved by 'fer train --save' (which writes the names beside it)"
            )
        class_names = CLASS_NAMES
    if len(class_names) != n_out:
        raise ConfigError(
            f"the model has {n_out} outputs but {len(class_names)} class names ({', '.join(class_names)}); expected "
            f"one name per output. Use a model saved by 'fer train --save', or fix its .classes.json"
        )
    check_folder_names(class_names)
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    h, w = shape[1], shape[2]
    if h is None and w is None:
        size = 128
    elif h != w:
        raise ConfigError(f"model input {h}x{w}: expected a square input such as 128x128")
    else:
        size = int(h)
    channels = shape[-1] if len(shape) == 4 else 3
    if channels not in (1, 3):
        raise ConfigError(f"model input has {channels} channels: expected 3 (RGB) or 1 (grayscale; faces are converted)")
    return model, class_names, size, int(channels)


def check_folder_names(class_names) -> None:
    for name in class_names:
        if not name or "/" in name or "\\" in name or name.startswith((".", "_")):
            raise ConfigError(f"class name {name!r} cannot be a folder name; rename it (no slashes, no leading dot or underscore)")


def model_fingerprint(model, class_names, size) -> str:
    h = hashlib.sha1(f"{size}|{'|'.join(class_names)}".encode())
    for w in getattr(model, "model", model).get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()
