"""Choosing the model that sorts faces, and recording the choice beside them.

:func:`pick` is the rule: among candidate models, the best measured HOLDOUT accuracy wins,
never the test accuracy (its docstring states it whole). The candidates come from the caller
(:func:`fer_utils.study.choice.candidates` for a profile's study). :func:`named_model` is a
model the user named. :func:`write_sorted_by` records the choice, with its measured test
accuracy, beside the sorted faces (``OUTPUT/sorted_by.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_utils.atomic import atomic_write_json
from fer_utils.errors import FerError
from fer_utils.training import rundir

SORTED_BY = "sorted_by.json"


def pick(found: list[dict]) -> dict:
    """The best of the candidates ``found`` by measured HOLDOUT accuracy, never by test accuracy.

    Rule: the highest holdout accuracy wins (ties: the earlier candidate, the study's final
    model first). A model without a holdout measurement (the report's CNN trained with
    ``selection="test"`` validates on the test split, so it has none) ranks below every model
    that has one; with no holdout measurement at all, the first candidate (the study's final
    model) sorts. The test accuracy is carried along to be REPORTED, not to choose.
    """
    measured = [c for c in found if c["holdout_accuracy"] is not None]
    best = max(measured, key=lambda c: c["holdout_accuracy"]) if measured else found[0]
    reason = (f"best holdout accuracy {best['holdout_accuracy']:.4f} of {len(measured)} measured candidate(s)" if measured
              else "no candidate has a holdout measurement: the study's final model")
    return {**best, "path": Path(best["path"]), "rule": reason, "candidates": len(found)}


def named_model(path) -> dict:
    """A model named by the user (``--model``/``--run``): its test accuracy when it is a run's."""
    path = Path(path)
    out = {"name": f"the model {path}", "kind": "named", "path": path, "holdout_accuracy": None,
           "test_accuracy": None, "test_ci95": None, "n_test": None, "rule": "named by the user"}
    try:
        metrics = rundir.read_metrics(path.parent)
        ev = metrics.get("evaluations", {}).get(str(int(path.stem.split("-e")[-1])), {})
        test = ev.get("test") or {}
        out.update(test_accuracy=test.get("accuracy"), test_ci95=test.get("ci95"), n_test=test.get("n"),
                   synthetic=bool(metrics.get("data_synthetic")), trained_on=metrics.get("data_source"))
        if out["synthetic"]:
            out["name"] += " (trained on synthetic faces)"
    except (FerError, OSError, ValueError):
        pass
    return out


def sorted_by_line(choice: dict) -> str:
    """One line: which model sorted and its measured test accuracy (with its 95% interval)."""
    acc = choice.get("test_accuracy")
    if acc is None:
        measured = "test accuracy not measured"
    else:
        ci = choice.get("test_ci95")
        measured = f"measured test accuracy {acc:.1%}" + (f" (95% interval {ci[0]:.1%}-{ci[1]:.1%}, n={choice.get('n_test')})" if ci else "")
        if choice.get("test_set"):
            measured += f" on {choice['test_set']}"
    if choice.get("synthetic"):
        measured += "; TRAINED ON SYNTHETIC FACES, not real ones"
    return f"Sorted by {choice['name']}: {measured}; chosen because: {choice['rule']} ({choice['path']})"


def write_sorted_by(output, choice: dict) -> Path:
    """Record the choice beside the sorted faces: ``OUTPUT/sorted_by.json``."""
    dest = Path(output) / SORTED_BY
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in choice.items()} | {"line": sorted_by_line(choice)}
    try:
        if json.loads(dest.read_text()) == json.loads(json.dumps(record, default=str)):
            return dest  # unchanged: a second run leaves OUTPUT byte for byte (and mtime) as it was
    except (OSError, ValueError):
        pass
    atomic_write_json(dest, record)
    return dest


def read_sorted_by(output) -> dict | None:
    """What :func:`write_sorted_by` recorded, or None."""
    from fer_utils.jsonfile import read_json

    return read_json(Path(output) / SORTED_BY, dict, what="the record of the model that sorted these faces", missing=None,
                     fix="delete it; the next 'fer organize' into this folder writes it again")
