"""The trained model that ships inside the package: anyone can label faces offline, no training.

Three files in ``fer_utils/weights/`` (package data, in the wheel):

* ``weights.npz``: every weight of the network, in the network's order (float16 when that scores
  the same as float32 within 0.1 point on the holdout, else float32; computed in float32);
* ``card.json``: the run configuration the network is rebuilt from, its class names, the
  weights' SHA-256, and every number of the model card (each measured by ``fer ship``:
  :mod:`fer_utils.apply.ship`);
* ``MODEL_CARD.md``: the card for people, rendered from ``card.json``.

:func:`load` rebuilds the network from the configuration through the registry (the code that
trained it) and sets the weights after checking their digest, names and shapes, so a damaged or
foreign file is a one-line error, never a silently different model.

The weights derive from research-only data sets (the card names them and their terms: RAF-DB and
FER2013 for the model that ships now), licensed for non-commercial research only: so are they.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from fer_utils.errors import FerError
from fer_utils.paths import PACKAGE_DIR

SHIPPED_DIR = PACKAGE_DIR / "weights"
WEIGHTS, CARD, CARD_MD = "weights.npz", "card.json", "MODEL_CARD.md"
NAME = "shipped"  # how a user names it: --model shipped
CARD_VERSION = 1


def folder(where=None) -> Path:
    return SHIPPED_DIR if where is None else Path(where)


def available(where=None) -> bool:
    f = folder(where)
    return (f / WEIGHTS).is_file() and (f / CARD).is_file()


def read_card(where=None) -> dict:
    """``card.json``, checked for the keys :func:`load` needs (a one-line error naming the file)."""
    path = folder(where) / CARD
    if not path.is_file():
        raise FerError(f"{path}: no shipped model here (the package was built without one); train one with "
                       f"'fer train --model resnet --data raf-basic.zip' and pass --model FILE.keras")
    from fer_utils.jsonfile import read_json

    card = read_json(path, {"version": int, "config": dict, "class_names": list, "weights": dict},
                     what="the shipped model's card", fix="reinstall the package")
    if card["version"] != CARD_VERSION:
        raise FerError(f"{path}: card version {card['version']!r}, this code reads {CARD_VERSION}; reinstall the package")
    return card


def identity(where=None) -> dict:
    """Which model ships (its card's name, run and weights' SHA-256): what a score made with
    ``shipped`` records, so it can be told from one made with a model shipped before."""
    card = read_card(where)
    return {"name": card.get("name"), "run_id": card.get("run_id"), "sha256": card["weights"].get("sha256")}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(where=None):
    """The shipped network and its class names: ``(model, class_names)``."""
    from fer_utils.models.registry import build, class_names_problem
    from fer_utils.training.config import RunConfig

    f = folder(where)
    card = read_card(f)
    path = f / WEIGHTS
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FerError(f"{path}: cannot read the shipped weights ({exc.strerror or exc}); reinstall the package") from None
    if digest(raw) != card["weights"].get("sha256"):
        raise FerError(f"{path}: SHA-256 differs from the one in {CARD} (a damaged or replaced file); reinstall the package")
    names = tuple(card["class_names"])
    problem = class_names_problem(names)
    if problem:
        raise FerError(f"{f / CARD}: {problem}; reinstall the package")
    cfg = RunConfig.from_dict(card["config"])
    model = build(cfg, len(names), class_names=names)
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = [npz[f"w{i:03d}"] for i in range(len(npz.files))]
    paths = card["weights"].get("paths", [])
    if [w.path for w in model.weights] != paths or [tuple(a.shape) for a in arrays] != [tuple(w.shape) for w in model.weights]:
        raise FerError(f"{path}: its weights do not fit the network {CARD} describes; reinstall the package")
    for w, a in zip(model.weights, arrays):
        w.assign(a.astype(w.dtype))
    model.class_names = names
    return model, names


def weights_bytes(model, dtype: str) -> tuple[bytes, dict]:
    """The network's weights as ``weights.npz`` bytes (floating ones stored as ``dtype``) and
    the card's ``weights`` entry (file, dtype, SHA-256, size, variable paths)."""
    arrays = {}
    for i, w in enumerate(model.weights):
        a = np.asarray(w.numpy())
        arrays[f"w{i:03d}"] = a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    return data, {"file": WEIGHTS, "dtype": dtype, "sha256": digest(data), "bytes": len(data),
                  "paths": [w.path for w in model.weights]}


def with_weights_as(model, dtype: str):
    """A copy of the network's weights rounded through ``dtype`` (what shipping as it keeps)."""
    return [np.asarray(w.numpy()).astype(dtype).astype(w.dtype) if np.issubdtype(np.asarray(w.numpy()).dtype, np.floating)
            else np.asarray(w.numpy()) for w in model.weights]


def choice(where=None) -> dict:
    """The shipped model as a candidate of :func:`fer_utils.apply.choose.pick`: its holdout
    accuracy (what chooses) and its accuracy on its first test set (what is reported)."""
    f = folder(where)
    card = read_card(f)
    tests = card.get("tests") or {}
    order = [n for n in (card.get("test_order") or sorted(tests)) if n in tests]
    first = (order[0], tests[order[0]]) if order else (None, {})
    test = first[1] or {}
    trained = card.get("trained_on") or {}
    return {"name": f"the shipped model ({card.get('name', 'shipped')}, trained on {trained.get('name', '?')})",
            "kind": NAME, "path": str(f / WEIGHTS), "data": card["config"].get("data"),
            "holdout_accuracy": (card.get("holdout") or {}).get("accuracy"), "test_accuracy": test.get("accuracy"),
            "test_ci95": test.get("ci95"), "n_test": test.get("n"), "test_set": first[0],
            "trained_on": trained.get("name"), "synthetic": bool(trained.get("synthetic")),
            "rule": "the model that ships in the package"}
