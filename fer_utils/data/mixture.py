"""Training on several data sets at once: one :class:`~fer_utils.data.datasets.Dataset` made of
several, every face remembering which set it came from.

Each set is loaded as usual (:func:`fer_utils.data.datasets.load`: its own layout, classes mapped
by NAME onto the seven, every face decoded to RGB and resized with NEAREST to the model's side,
the same at train and at test time: FER2013's 48x48 grayscale faces become 3 equal channels),
then the splits are concatenated in the order the sets were given. ``source_train`` and
``source_test`` hold each face's set (0, 1, ...), ``source_names`` the sets' names.

A set may have a train split and no test split, or be a plain class-folder tree with no splits
at all: given to train on, all of it is training faces (the holdout is carved from it like from
every set's train split), and it has no test faces to report. The mixture's fingerprint is a
hash of the parts' fingerprints and their order.

How the sets are mixed in an epoch (:data:`MIXES`, the run configuration's ``mix``):

* ``proportional``: every training face once per epoch, in a seeded random order (what one set does);
* ``equal``: as many faces per epoch as ``proportional``, an equal share from each set, drawn
  per epoch without replacement where a set has enough faces and with replacement where it
  has not (:func:`epoch_order`).

An epoch's length can be set apart from the data (the configuration's ``epoch_faces``): runs on
sets of different sizes then train on the same number of faces, at the same cost, which is how
the comparisons of one set against a mixture are made. ``proportional`` then takes that many
faces of a fresh seeded permutation each epoch (continuing into a next permutation when it
asks for more faces than there are); ``equal`` splits that many equally among the sets.
"""

from __future__ import annotations

import hashlib

import numpy as np

from fer_utils.errors import ConfigError, DataError

MIXES = ("proportional", "equal")


def check_mix(mix) -> str:
    if mix not in MIXES:
        raise ConfigError(f"mix {mix!r}: expected one of {', '.join(MIXES)} (how the data sets share an epoch)")
    return mix


def combine(parts, names=None):
    """One Dataset of the Datasets ``parts`` (all at one image size), faces tagged by set."""
    from fer_utils.data.datasets import Dataset

    parts = list(parts)
    if not parts:
        raise DataError("no data set given; pass one or more with --data")
    if len(parts) == 1:
        return parts[0]
    sizes = {p.image_size for p in parts}
    if len(sizes) != 1:
        raise DataError(f"data sets loaded at different sizes {sorted(sizes)}; load them at one image_size")
    first = {}
    for p in parts:  # one set under two paths (a folder and its zip) would count its faces twice
        if p.fingerprint and p.fingerprint in first:
            raise DataError(f"{p.source}: the same faces as {first[p.fingerprint]} (fingerprint {p.fingerprint[:12]}); "
                            "give each data set once")
        first.setdefault(p.fingerprint, p.source)
    names = list(names or [_short(p.source) for p in parts])
    if len(set(names)) != len(names):
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    fp = hashlib.sha256(("mixture:" + ",".join(p.fingerprint for p in parts)).encode()).hexdigest()
    ds = Dataset(
        x_train=np.concatenate([p.x_train for p in parts]), y_train=np.concatenate([p.y_train for p in parts]),
        x_test=np.concatenate([p.x_test for p in parts]), y_test=np.concatenate([p.y_test for p in parts]),
        names_train=[f"{n}:{r}" for n, p in zip(names, parts) for r in p.names_train],
        names_test=[f"{n}:{r}" for n, p in zip(names, parts) for r in p.names_test],
        class_names=parts[0].class_names, layout="mixture of " + " + ".join(p.layout for p in parts),
        source=" + ".join(str(p.source) for p in parts), image_size=parts[0].image_size, fingerprint=fp,
        synthetic=any(p.synthetic for p in parts), problems=[f"{n}: {q}" for n, p in zip(names, parts) for q in p.problems],
        skipped=[s for p in parts for s in p.skipped], splits=("train", "test"),
        source_train=np.concatenate([np.full(len(p.y_train), i, np.int64) for i, p in enumerate(parts)]),
        source_test=np.concatenate([np.full(len(p.y_test), i, np.int64) for i, p in enumerate(parts)]),
        source_names=tuple(names),
    )
    if len(ds.y_train) == 0:
        raise DataError(f"{ds.source}: none of the data sets has a train split; give at least one set to train on")
    return ds


def _short(source) -> str:
    from pathlib import Path

    name = Path(str(source)).name
    return name[:-4] if name.lower().endswith(".zip") else name


def load_many(paths, image_size: int, **kwargs):
    """:func:`~fer_utils.data.datasets.load` of one path, or :func:`combine` of several (a set
    with one split, or none, trains on all its faces: :func:`_one_split`)."""
    from fer_utils.data import datasets
    from fer_utils.errors import NoLayout

    paths = [paths] if isinstance(paths, (str, bytes)) or not hasattr(paths, "__iter__") else list(paths)
    if len(paths) == 1:
        return datasets.load(paths[0], image_size=image_size, **kwargs)
    parts = []
    for p in paths:
        try:
            parts.append(datasets.load(p, image_size=image_size, **kwargs))
        except NoLayout:  # one split only: a train-only set, or a plain class-folder tree (test)
            parts.append(_one_split(p, image_size, **kwargs))
    return combine(parts)


def _one_split(path, image_size, **kwargs):
    """A set given to train on that has one split (``train/`` alone, or a plain class-folder
    tree): all of it trains; its holdout is carved from it like every set's."""
    from fer_utils.data import datasets

    return datasets.load(path, image_size=image_size, split="train", **kwargs)


def sources_of(ds, split: str) -> np.ndarray:
    """Each face's set in ``split`` (zeros for a data set that is not a mixture)."""
    arr = getattr(ds, f"source_{split}", None)
    return np.zeros(len(getattr(ds, f"y_{split}")), np.int64) if arr is None else np.asarray(arr)


def names_of(ds) -> tuple[str, ...]:
    return tuple(getattr(ds, "source_names", ()) or ())


def epoch_order(sources: np.ndarray, mix: str, rng, size: int = 0) -> np.ndarray:
    """The indices of one epoch's faces (into the training faces, whose sets are ``sources``);
    ``size`` faces when it is positive, else as many as there are training faces.

    >>> rng = np.random.default_rng(0)
    >>> o = epoch_order(np.array([0] * 8 + [1] * 2), "equal", rng)
    >>> len(o), int((o >= 8).sum())
    (10, 5)
    >>> o = epoch_order(np.array([0] * 8 + [1] * 2), "proportional", rng, size=25)
    >>> len(o), sorted(np.bincount(o).tolist()) == [2] * 5 + [3] * 5
    (25, True)
    """
    n = len(sources)
    size = int(size) if size and int(size) > 0 else n
    if check_mix(mix) == "proportional":
        if size == n:
            return rng.permutation(n)  # what every run before epoch_faces drew: their histories stay
        return np.concatenate([rng.permutation(n) for _ in range(-(-size // n))])[:size]
    ids = np.unique(sources)
    share = [size // len(ids) + (1 if j < size % len(ids) else 0) for j in range(len(ids))]
    picks = []
    for j, s in enumerate(ids):
        idx = np.flatnonzero(sources == s)
        picks.append(rng.choice(idx, share[j], replace=share[j] > len(idx)))
    return rng.permutation(np.concatenate(picks))
