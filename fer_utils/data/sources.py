"""One reader for a folder or a zip: sorted relative posix paths, and a way to read them.

The data loader (:mod:`fer_utils.data.datasets`, with :mod:`fer_utils.data.layouts`) and the sorting
step (:mod:`fer_utils.apply.organize`) both see their input through :class:`Source`, so a zip and the
folder it was made from look the same to them, and the awkward cases are handled once:

* hidden files and folders, ``__MACOSX`` resource forks, ``Thumbs.db`` are not data;
* a zip that holds two entries with the same path: the path is listed once and named in
  :attr:`Source.duplicates` (which of the two is meant is ambiguous, so callers refuse it);
* a folder that cannot be listed, or a symlink that leads nowhere (or to itself), is kept in
  :attr:`Source.problems` or fails on :meth:`Source.read` with an ``OSError`` naming it;
* a zip member with a bad CRC fails on :meth:`Source.read` with :class:`SourceReadError`.

Zip members are read in the calling thread only (``ZipFile`` reads are not thread safe);
folder files may be read from worker threads. Also here: :func:`check_output_folder`, the
check every command that writes a folder makes BEFORE any work.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from fer_utils.errors import DataError, FerError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class SourceReadError(OSError):
    """A file of the source could not be read (bad CRC, unreadable member, ...)."""


def ignored_path(rel: str) -> bool:
    """Hidden files and folders, macOS resource forks and Windows thumbnails are not data.

    >>> ignored_path("a/.DS_Store"), ignored_path("__MACOSX/a.jpg"), ignored_path("a/b.jpg")
    (True, True, False)
    """
    parts = rel.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] in ("Thumbs.db", "desktop.ini")


def utf8_name(name: str) -> bool:
    """Can ``name`` (as the OS gave it, undecodable bytes as surrogates) be written as UTF-8?"""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def shown_name(name: str) -> str:
    r"""``name`` with its undecodable bytes written as ``\xNN`` (what errors.csv can hold).

    >>> shown_name("bad\udcff.png")
    'bad\\xff.png'
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unsafe_member(name: str) -> bool:
    """A zip member whose path is absolute or climbs out with '..' (a "zip slip" path).

    >>> unsafe_member("../x.png"), unsafe_member("/x.png"), unsafe_member("a/../../x.png"), unsafe_member("C:/x.png"), unsafe_member("a/x.png")
    (True, True, True, True, False)
    """
    n = name.replace("\\", "/")
    return n.startswith("/") or (len(n) > 1 and n[1] == ":") or ".." in n.split("/")


def is_image(rel: str) -> bool:
    """True when the name ends in an image suffix (:data:`IMAGE_SUFFIXES`, any case)."""
    return rel.lower().endswith(IMAGE_SUFFIXES)


class Source:
    """Read-only view of a folder or a zip file as sorted relative posix paths.

    Parameters
    ----------
    path : folder or .zip
    exclude : folder, optional
        A folder inside ``path`` that is not walked (organize's OUTPUT inside its INPUT).
    what : str
        What the caller expects there, for the error messages ("RAF-DB", "faces").

    Attributes
    ----------
    files : list of str
        Every file that is not :func:`ignored_path`, each once, sorted.
    duplicates : dict
        Zip paths held by more than one entry -> number of entries.
    problems : list of (str, str)
        (folder/, reason) for folders that could not be listed; (member, reason) for zip members
        whose path leaves the zip's folder, and (escaped name, reason) for file names that are not
        valid UTF-8 (neither is ever read).
    """

    def __init__(self, path, *, exclude=None, what: str = "a data set"):
        self.path = Path(path).expanduser()
        self.problems: list[tuple[str, str]] = []
        self.duplicates: dict[str, int] = {}
        self._zip = None
        if not self.path.exists():
            raise DataError(f"{self.path}: no such file or folder; expected {what} as a folder or a .zip. Fix the path")
        if self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
                names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(
                    f"{self.path}: not a readable zip ({_reason(exc)}); expected {what} as a folder or a "
                    f".zip. Re-download or unpack it and pass the folder"
                ) from None
            counts = Counter(names)
            self.duplicates = {n: k for n, k in counts.items() if k > 1 and not ignored_path(n)}
            for n in sorted(n for n in counts if unsafe_member(n)):  # never read: named, not silently dropped
                self.problems.append((n, "a path that leaves the zip's folder (absolute, or with '..'); not read. Rebuild "
                                         "the zip with relative paths"))
            names = [n for n in counts if not unsafe_member(n)]
        else:
            names = []
            for n in self._walk(exclude):
                if utf8_name(n):
                    names.append(n)
                else:  # a name the file system holds but no text file can: named (escaped), never read
                    self.problems.append((shown_name(n), "a file name that is not valid UTF-8; not read. Rename the "
                                                         "file (e.g. convmv -f latin1 -t utf8) and run again"))
        self.files = sorted(n for n in names if not ignored_path(n))

    def _walk(self, exclude) -> list[str]:
        names: list[str] = []
        excl = Path(exclude).resolve() if exclude is not None else None

        def onerror(exc):
            rel = Path(exc.filename).relative_to(self.path).as_posix() if exc.filename else "?"
            self.problems.append((rel + "/", f"cannot list folder ({exc.strerror or exc})"))

        for dirpath, dirnames, filenames in os.walk(self.path, onerror=onerror):
            d = Path(dirpath)
            dirnames[:] = sorted(x for x in dirnames if not x.startswith(".") and (excl is None or (d / x).resolve() != excl))
            rel = d.relative_to(self.path).as_posix()
            names += [f if rel == "." else f"{rel}/{f}" for f in filenames]
        return names

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    @property
    def images(self) -> list[str]:
        """The files with an image suffix."""
        return [f for f in self.files if is_image(f)]

    def read(self, rel: str) -> bytes:
        """The bytes of ``rel``; ``OSError`` (a :class:`SourceReadError` for zip members) when
        they cannot be read. The message never holds a memory address: it is the same on every
        run, so it can go into a file that must be byte-identical on a second run."""
        if self._zip is None:
            return (self.path / rel).read_bytes()
        try:
            return self._zip.read(rel)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, ValueError, EOFError, OSError, NotImplementedError) as exc:
            # bad CRC, encrypted member, unsupported compression, truncated archive
            raise SourceReadError(errno.EIO, f"cannot read from the zip ({_reason(exc)})") from None

    def stamp(self, rel: str) -> str:
        """Size and modification time of one file: a changed file gets another stamp."""
        if self._zip is not None:
            info = self._zip.getinfo(rel)
            return f"{info.file_size}:{'-'.join(map(str, info.date_time))}"
        st = (self.path / rel).stat()
        return f"{st.st_size}:{st.st_mtime_ns}"

    def mtime_ns(self, rel: str) -> int | None:
        """Modification time of a folder file (None for zip members)."""
        return None if self._zip is not None else (self.path / rel).stat().st_mtime_ns

    def display(self, rel: str) -> str:
        """How to name ``rel`` to a person: ``folder/rel`` or ``archive.zip!rel``."""
        return f"{self.path}!{rel}" if self.is_zip else str(self.path / rel)

    def fingerprint(self) -> str:
        """Cheap identity of the whole source's content: sizes and mtimes of its files.
        A file that cannot be stat-ed (a symlink to itself) counts by its name only."""
        h = hashlib.sha1()
        h.update(str(self.path.resolve()).encode())
        if self.is_zip:
            st = self.path.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            for rel in self.files:
                try:
                    st = (self.path / rel).stat()
                    h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{rel}:unreadable\n".encode())
        return h.hexdigest()

    def close(self):
        if self._zip is not None:
            self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _reason(exc: BaseException) -> str:
    """``Type: message`` without memory addresses (deterministic across runs)."""
    import re

    text = re.sub(r" at 0x[0-9a-fA-F]+", "", str(exc))
    text = re.sub(r"<_io\.\w+ object>", "the file", text)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_output_folder(path, flag: str = "OUTPUT") -> Path:
    """Check, before any work, that ``path`` is (or can become) a writable folder.

    Raises :class:`FerError` naming the path when it is a file, or when its nearest existing
    folder refuses a test file (read-only, no permission, full). Returns the path.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise FerError(f"{flag} {path}: is a file; expected a folder (existing or new). Pass another {flag}, or move the file away")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise FerError(f"{flag} {path}: {probe} is a file, so the folder cannot be made; pass another {flag}")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".fer-write-test.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise FerError(
            f"{flag} {path}: cannot write in {probe} ({exc.strerror or exc}); expected a writable folder. "
            f"Pass a folder you can write to, or fix its permissions or free space"
        ) from None
    return path


def write_error(path, exc: OSError, resume: str) -> FerError:
    """The one-line error for a failed write (full disk, read-only file system, ...)."""
    return FerError(f"{path}: cannot write ({exc.strerror or exc}); nothing was left half-written. {resume}")
