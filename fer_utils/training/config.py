"""The run configuration: one run = one configuration of ANY model (:mod:`fer_utils.models.registry`).

A :class:`RunConfig` holds the fields every model shares (the data set's fingerprint, the
model's name, seed, image size, batch size, learning rate, selection protocol) and the model's
own recipe (``recipe``: the family's dataclass, e.g. the report CNN's depth, the residual
network's widths). The recipe's fields read as the configuration's own (``cfg.depth``,
``cfg.widths``), are given to the constructor as keywords (``RunConfig(data=fp, depth=4)``)
and are stored flat in ``config.json``, so a report-CNN run's dict, and hence its run id, is
what it was before there was more than one model.

For the report's CNN the epoch count is NOT part of the configuration: the run store trains it
once, epoch by epoch, and every table row that needs its first E epochs reads them from the
same run. A family whose schedule spans the run (``resnet``) has ``epochs`` in its recipe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from fer_utils.errors import ConfigError
from fer_utils.models.registry import family

SELECTIONS = ("test", "holdout")
#: The shared fields (everything else is the model's recipe).
SHARED = ("data", "model", "lr", "batch_size", "seed", "image_size", "selection", "val_fraction", "numerics", "mix",
          "epoch_faces")


def from_dict(cls, d: dict):
    """``cls(**d)`` for a dataclass, where an unknown key is an error naming it (nanoGPT's rule)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {sorted(unknown)}; known: {sorted(names)}")
    return cls(**d)


@dataclass(frozen=True, init=False)
class RunConfig:
    """One training configuration of one model (see the module doc)."""

    data: str  # fingerprint of the decoded data set (fer_utils.data.datasets.fingerprint)
    model: str = "report_cnn"  # a name of fer_utils.models.registry
    lr: float = 0.001  # (peak) learning rate
    batch_size: int = 64
    seed: int = 0  # weights, shuffle order, augmentation and mixing all derive from it
    image_size: int = 128  # images are resized (NEAREST) to image_size x image_size
    selection: str = "test"  # "test": validate on the test split (the report); "holdout": on a split of train
    val_fraction: float = 0.1  # share of train held out when selection == "holdout"
    #: How the numbers are made: 2 = NumPy initial weights, backend-independent augmentation draws
    #: and the loss from logits (the same study on TensorFlow and JAX). Runs written before it
    #: (no such key in their config.json) read as 1 and are never resumed by today's code.
    numerics: int = 2
    #: How the sets of a mixture share an epoch (fer_utils.data.mixture.MIXES); "proportional",
    #: the default and what one set does, is left out of config.json, so no run id changes.
    mix: str = "proportional"
    #: Faces per epoch (0: every training face once, what every run before it did; left out of
    #: config.json then). Runs on data sets of different sizes train at equal cost with one value.
    epoch_faces: int = 0
    recipe: object = None  # the model's own fields (its family's dataclass)

    def __init__(self, data: str, model: str = "report_cnn", *, recipe=None, **fields):
        fam = family(model)
        shared = {k: fields.pop(k) for k in list(fields) if k in SHARED}
        shared = {**fam.defaults, **shared}
        own = {f.name for f in dataclasses.fields(fam.recipe)}
        unknown = set(fields) - own
        if unknown:
            raise ConfigError(f"unknown RunConfig keys {sorted(unknown)} for model {model!r}; "
                              f"known: {sorted(set(SHARED) | own)}")
        if recipe is None:
            recipe = fam.recipe(**fields)
        elif fields:
            recipe = dataclasses.replace(recipe, **fields)
        if not isinstance(recipe, fam.recipe):
            raise ConfigError(f"recipe {recipe!r}: expected a {fam.recipe.__name__} for model {model!r}")
        values = {f.name: f.default for f in dataclasses.fields(self) if f.name not in ("data", "model", "recipe")}
        values.update(shared, data=data, model=model, recipe=recipe)
        for k, v in values.items():
            object.__setattr__(self, k, v)
        self.__post_init__()

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection {self.selection!r}: expected one of {SELECTIONS}")
        if not self.lr > 0:
            raise ConfigError(f"lr {self.lr!r}: expected a positive learning rate such as 0.001")
        if int(self.batch_size) < 1:
            raise ConfigError(f"batch_size {self.batch_size!r}: expected a positive integer")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction {self.val_fraction!r}: expected a number in (0, 1)")
        from fer_utils.data.mixture import check_mix

        check_mix(self.mix)
        if isinstance(self.epoch_faces, bool) or not isinstance(self.epoch_faces, int) or self.epoch_faces < 0:
            raise ConfigError(f"epoch_faces {self.epoch_faces!r}: expected a whole number of faces per epoch "
                              f"(0: every training face once)")
        self.recipe.check(self)

    def __getattr__(self, name):
        # Only called for names that are not fields: the recipe's fields read as the config's own.
        if name != "recipe" and "recipe" in self.__dict__ and hasattr(self.__dict__["recipe"], name):
            return getattr(self.__dict__["recipe"], name)
        raise AttributeError(f"{type(self).__name__} of model {self.__dict__.get('model')!r} has no field {name!r}")

    def to_dict(self) -> dict:
        """The flat dict stored as ``config.json`` (shared fields and the recipe's together)."""
        d = {k: getattr(self, k) for k in SHARED}
        d.update(self.recipe.to_dict())
        if self.selection == "test":
            d.pop("val_fraction")  # irrelevant, so it must not split run ids
        if d["mix"] == "proportional":
            d.pop("mix")  # what every run before mixtures did: their run ids stay
        if not d["epoch_faces"]:
            d.pop("epoch_faces")  # likewise
        return d

    @property
    def run_id(self) -> str:
        """Stable id: the family's readable prefix plus a hash of the canonical JSON of :meth:`to_dict`."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canon.encode()).hexdigest()[:12]
        return f"{self.recipe.run_prefix(self)}-{digest}"

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """A stored ``config.json`` (also one written by the beyond trainer before the models
        shared one trainer: :func:`legacy_beyond`)."""
        if not isinstance(d, dict):
            raise ConfigError(f"a run configuration must be a JSON object, got {type(d).__name__}")
        if "beyond" in d:
            d = legacy_beyond(d)
        d = {"numerics": 1, **d}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def replace(self, **changes) -> "RunConfig":
        """The same configuration with ``changes`` (shared or recipe fields; an unknown one is an error)."""
        d = {k: getattr(self, k) for k in SHARED if k != "model"}
        d.update(self.recipe.to_dict())
        d.update({k: tuple(v) if isinstance(v, list) else v for k, v in changes.items() if k != "model"})
        model = changes.get("model", self.model)
        if model != self.model:  # another family: only the shared fields carry over
            d = {k: v for k, v in d.items() if k in SHARED}
        return RunConfig(model=model, **d)


def legacy_beyond(d: dict) -> dict:
    """A config.json of the old beyond trainer (``{"beyond": {...}, "data", "model":
    "beyond_resnet"}``) as today's flat dict of model ``resnet``: the same recipe, selected on
    the holdout as it always was.

    >>> legacy_beyond({"beyond": {"epochs": 2, "seed": 1, "image_size": 32, "batch_size": 8, "lr": 0.002,
    ...                "val_fraction": 0.1, "model": "beyond_resnet", "stem": 16}, "data": "f", "model": "beyond_resnet"})
    {'epochs': 2, 'seed': 1, 'image_size': 32, 'batch_size': 8, 'lr': 0.002, 'val_fraction': 0.1, 'stem': 16, 'data': 'f', 'model': 'resnet', 'selection': 'holdout', 'numerics': 2}
    """
    old = dict(d["beyond"])
    old.pop("model", None)
    return {**old, "data": d["data"], "model": "resnet", "selection": "holdout", "numerics": 2}
