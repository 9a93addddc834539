"""The one way the commands read a JSON file they did not just write themselves.

:func:`read_json` reads it, checks its shape against a small schema and raises ONE line that
names the file, the key and what was expected, and says how to fix it: never a traceback for a
file that is damaged, hand-edited, or of another kind. Every JSON file the commands read
(a run's ``config.json`` and ``metrics.json``, a table's manifest, a published index, the
shipped model's card, organize's state, a model's class names) goes through it.

A schema maps a key to the type it must hold (a tuple of types for several); a key whose name
ends in ``?`` is optional. Numbers are ``int`` or ``float`` and never ``bool``
(:data:`NUMBER`); a nested schema (a dict) checks a nested object the same way.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "m.json"
>>> _ = p.write_text('{"holdout": {"accuracy": "0.8"}}')
>>> try:
...     read_json(p, {"holdout": {"accuracy": NUMBER}}, what="a run's metrics", fix="train it again")
... except FerError as e:
...     print(str(e).replace(str(p), "m.json"))
m.json: key 'holdout.accuracy' should be a number, got a string ("0.8"); a run's metrics is expected; train it again
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_utils.errors import FerError

#: A JSON number (``true`` and ``false`` are not numbers, though Python's bool is an int).
NUMBER = (int, float)
_NAMES = {dict: "a JSON object", list: "a list", str: "a string", int: "a whole number", float: "a number",
          bool: "true or false", type(None): "null"}


def kind_name(kind) -> str:
    if isinstance(kind, tuple):
        return "a number" if set(kind) == {int, float} else " or ".join(_NAMES.get(k, k.__name__) for k in kind)
    return _NAMES.get(kind, getattr(kind, "__name__", str(kind)))


def _got(value) -> str:
    if isinstance(value, (dict, list)):
        return kind_name(type(value))
    text = json.dumps(value)
    return f"{kind_name(type(value))} ({text[:40]}{'...' if len(text) > 40 else ''})"


def _is(value, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


def check(value, schema, *, where: str = "") -> str | None:
    """The first way ``value`` differs from ``schema``, as words (None: it fits)."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{f'key {where!r}' if where else 'the file'} should be a JSON object, got {_got(value)}"
        for key, sub in schema.items():
            optional = key.endswith("?")
            name = key.rstrip("?")
            path = f"{where}.{name}" if where else name
            if name not in value:
                if optional:
                    continue
                return f"key {path!r} is missing"
            problem = check(value[name], sub, where=path)
            if problem:
                return problem
        return None
    if not _is(value, schema):
        return f"{f'key {where!r}' if where else 'the file'} should be {kind_name(schema)}, got {_got(value)}"
    return None


def read_json(path, schema=dict, *, what: str, fix: str, error=FerError, missing=FerError):
    """``path`` read as JSON and checked against ``schema``, or ``error`` raised with one line
    naming the file, the key, what was expected (``what``: "a run's metrics") and ``fix``.

    ``missing``: what a file that does not exist gives: an exception class (raised, one line),
    or a value returned as it is (e.g. None for an optional file).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if isinstance(missing, type) and issubclass(missing, BaseException):
            raise missing(f"{path}: no such file; {what} is expected there; {fix}") from None
        return missing
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text, so not {what}; {fix}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); {fix}") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise error(f"{path}: not valid JSON{where} (damaged or edited); {what} is expected; {fix}") from None
    problem = check(value, schema)
    if problem:
        raise error(f"{path}: {problem}; {what} is expected; {fix}")
    return value
