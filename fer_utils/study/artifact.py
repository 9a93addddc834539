"""A published folder is a checked artifact: its index (``published.json``) lists every file of
it with its size and SHA-256 (:func:`seal`), and every command that reads it checks them first
(:func:`verify`), so a hand-edited history or a run without its metrics is named, not printed
as if it were the training's."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fer_utils.errors import FerError

INDEX = "published.json"


class ArtifactError(FerError):
    """A published folder's files are not those its index lists."""


def digests(folder) -> dict:
    """``{relative path: {"size", "sha256"}}`` of every file under ``folder`` but the index."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != INDEX and not p.name.startswith("."):
            out[p.relative_to(folder).as_posix()] = {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    return out


def seal(folder, index: dict) -> dict:
    """``index`` with ``files``: what :func:`verify` will check (call it once every file is written)."""
    return {**index, "files": digests(folder)}


def verify(folder, index: dict) -> None:
    """Every file the index lists is there with its size and SHA-256; else a one-line
    :class:`ArtifactError` naming the first that differs. An index without ``files`` (a folder
    published before they were recorded) is not checked."""
    listed = index.get("files")
    if listed is None:
        return
    folder = Path(folder)
    fix = "restore it (git checkout -- PATH) or publish the study again into a new folder"
    if not isinstance(listed, dict):
        raise ArtifactError(f"{folder / INDEX}: key 'files' should be a JSON object of path -> size and sha256; "
                            f"{fix.replace('PATH', str(folder / INDEX))}")
    for rel, want in sorted(listed.items()):
        path = folder / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ArtifactError(f"{folder / INDEX}: lists {rel!r}, a path outside the folder; {fix.replace('PATH', str(folder / INDEX))}")
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in {INDEX} but missing; {fix.replace('PATH', str(path))}")
        data = path.read_bytes()
        if not isinstance(want, dict) or len(data) != want.get("size") or hashlib.sha256(data).hexdigest() != want.get("sha256"):
            raise ArtifactError(f"{path}: differs from what {INDEX} recorded when it was published (edited or damaged); "
                                f"{fix.replace('PATH', str(path))}")
