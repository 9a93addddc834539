"""The ``fer`` command: a thin layer over the library (every command calls the function the
notebooks call, with keyword arguments).

Pattern: :func:`build_parser` declares every command; each subparser names its handler with
``set_defaults(func=...)``; a handler is one small function. :func:`main` owns the exit codes:
0 done, 2 bad input (a :class:`~fer_utils.errors.FerError`, a bad argument, or an OSError of the
user's environment such as a full disk or a read-only folder: one line naming the path), 1 a
failed job (``FerError.exit_code == 1``, e.g. a notebook that failed), 130 Ctrl-C. No traceback
unless ``--debug`` or ``FER_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import sys

from fer_utils.errors import FerError


def main(argv=None) -> int:
    from fer_utils.training import backend

    backend.quiet()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FER_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere: fer train --debug ...
    try:
        from fer_utils.cli.parser import build_parser

        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except FerError as exc:
        _traceback_if(debug)
        print(f"fer: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except BrokenPipeError:  # stdout closed by its reader (fer runs | head): stop quietly, as cat does
        _traceback_if(debug)
        try:
            sys.stdout = open(os.devnull, "w")  # nothing more reaches the closed pipe (at exit either)
        except OSError:
            pass
        print("fer: error: <stdout>: closed by its reader before the output was written; nothing else was left "
              "undone", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno is None and not exc.filename:
            raise  # not the user's environment: a bug of ours, show it
        _traceback_if(debug)
        print(f"fer: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _traceback_if(debug)
        print("fer: interrupted; finished epochs are kept, run the same command again to resume", file=sys.stderr)
        return 130


def _traceback_if(debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()


#: What to do about an OSError of the user's environment.
_OS_FIXES = {
    errno.ENOSPC: "the disk is full; free some space and run the same command again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run the same command again",
    errno.EACCES: "permission denied; choose a folder you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you can write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose a writable destination",
    errno.ENOTDIR: "a file stands where a folder is needed; choose another path or move that file away",
    errno.EISDIR: "a folder stands where a file is needed; choose another path",
    errno.ELOOP: "too many levels of symbolic links; fix the link",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
    errno.ENOENT: "no such file or folder; check the path",
}


def _os_error_line(exc: OSError) -> str:
    """One line: the path, what went wrong, the fix (no Python repr)."""
    where = exc.filename if exc.filename is not None else "?"
    if getattr(exc, "filename2", None):
        where = f"{where} -> {exc.filename2}"
    fix = _OS_FIXES.get(exc.errno, exc.strerror or type(exc).__name__)
    what = exc.strerror or str(exc)
    return f"{where}: {what}" + (f" ({fix})" if fix != what else "")
