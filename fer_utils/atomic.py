"""Atomic writes: a result file is either the old one or the complete new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are for everyone to read
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if exc.filename is None and exc.errno is not None:  # a full disk while writing: name the file, not "?"
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def atomic_save_model(model, path) -> None:
    """``model.save(path)`` atomically (the one place a Keras model is written): Keras writes a
    temporary sibling with the same suffix, which then replaces ``path`` in one step."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        model.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_writable(path, *, suffix: str | None = None, what: str = "") -> Path:
    """Check, before any work, that a file can be written at ``path``: the suffix, that it is not
    a folder, and that its nearest existing folder accepts a new file. Raises
    :class:`~fer_utils.errors.FerError` naming ``what`` (e.g. ``--save``) and the path.
    """
    from fer_utils.errors import FerError

    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    if suffix and path.suffix != suffix:
        raise FerError(f"{label}: expected a file name ending in {suffix} (e.g. {path.with_suffix(suffix).name})")
    if path.is_dir():
        raise FerError(f"{label}: is a folder; expected a file name ending in {suffix or 'a suffix'}")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise FerError(f"{label}: {parent} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".fer-write-check.")
    except OSError as exc:
        raise FerError(f"{label}: cannot write in {parent} ({exc.strerror}); choose a writable folder") from None
    os.close(fd)
    os.unlink(probe)
    return path


def temp_path_for(path) -> Path:
    """A temporary sibling of ``path`` (same file system, so ``os.replace`` is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    os.unlink(tmp)
    return Path(tmp)


def _jsonable(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextmanager
def staged_folder(dest):
    """Build the new version of the folder ``dest`` beside it and swap it in at the end, so a kill
    or a full disk at any instant leaves ``dest`` as it was or as it is meant to be, never half
    written. Yields the staging folder (``.<name>.staging`` beside ``dest``, a copy of ``dest``
    when it exists) to write into; on an error it is removed and ``dest`` is untouched. The
    swap is two renames (``dest`` to ``.<name>.replaced``, staging to ``dest``); a kill between
    them is repaired by the next call (:func:`recover_staged`). Both names are this function's."""
    import shutil

    dest = Path(dest)
    staging, _ = _staged_names(dest)
    recover_staged(dest)
    if staging.exists():
        shutil.rmtree(staging)  # a staging folder left by a killed call: start again
    try:
        if dest.exists():
            shutil.copytree(dest, staging, symlinks=True)
        else:
            staging.mkdir(parents=True)
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap(staging, dest)


def _staged_names(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(f".{dest.name}.staging"), dest.with_name(f".{dest.name}.replaced")


def _swap(staging: Path, dest: Path) -> None:
    import shutil

    _, old = _staged_names(dest)
    if dest.exists():
        dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old)
    else:
        staging.rename(dest)


def recover_staged(dest) -> None:
    """Finish a swap of :func:`staged_folder` that a kill interrupted: the new version is in place
    (drop the old one) or only the old one is (put it back)."""
    import shutil

    dest = Path(dest)
    _, old = _staged_names(dest)
    if old.exists():
        if dest.exists():
            shutil.rmtree(old)
        else:
            old.rename(dest)
