"""The beyond runs beside the report's CNN, and the choice of the model that sorts faces.

Beyond runs (:func:`fer_utils.training.beyond_train.train_beyond`) live in ``results/beyond/<run id>/``
in the run-directory format (config.json, history.csv, metrics.json, model-eNNNN.keras); they
are kept out of ``results/runs`` because :class:`~fer_utils.training.store.RunStore` reads every folder
there as a report-CNN run. A profile with ``beyond`` set (:data:`fer_utils.training.config.PROFILES`)
trains one beyond run per seed on its data (:func:`train_beyond_runs`).

:func:`best_model` picks the model ``fer organize`` and notebook 05 sort with, by HOLDOUT
accuracy only (its docstring states the rule); :func:`write_sorted_by` records the choice, with
its measured test accuracy, beside the sorted faces (``OUTPUT/sorted_by.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_utils import paths

from fer_utils.training import rundir
from fer_utils.atomic import atomic_write_json
from fer_utils.training.config import get_profile
from fer_utils.errors import ConfigError, FerError

SORTED_BY = "sorted_by.json"


def beyond_dir(results_dir=None) -> Path:
    """Where the beyond runs live: ``<results>/beyond``."""
    return (Path(results_dir) if results_dir else paths.RESULTS_DIR) / "beyond"


def beyond_config(profile: str, seed: int = 0):
    """The profile's :class:`~fer_utils.models.resnet.BeyondConfig` (with ``seed``), or None."""
    prof = get_profile(profile)
    if not prof.beyond:
        return None
    from fer_utils.models import resnet as beyond

    presets = {"default": beyond.BeyondConfig(), "smoke": beyond.SMOKE}
    if prof.beyond not in presets:
        raise ConfigError(f"profile {profile!r}: beyond {prof.beyond!r}; expected one of {', '.join(presets)}")
    return presets[prof.beyond].replace(seed=int(seed))


def train_beyond_runs(*, profile: str, data_path, seeds=(0,), results_dir=None, verbose: bool = True) -> list[Path]:
    """Train (or find finished) the profile's beyond run for each seed on ``data_path``; return
    their folders. Nothing to do for a profile without ``beyond``."""
    if beyond_config(profile) is None:
        return []
    from fer_utils.data import datasets
    from fer_utils.training.beyond_train import train_beyond

    cfg0 = beyond_config(profile)
    data = datasets.load(data_path, image_size=cfg0.image_size, verbose=verbose)
    out = []
    for cfg, run_dir in _beyond_run_dirs(profile, data.fingerprint, seeds, results_dir):
        train_beyond(data, run_dir, cfg, verbose=verbose)
        out.append(run_dir)
    return out


def _beyond_run_dirs(profile: str, fingerprint: str, seeds, results_dir):
    """(config, run folder) of the profile's beyond run for each seed on the data ``fingerprint``."""
    from fer_utils.training.beyond_train import run_id

    for seed in seeds or (0,):
        cfg = beyond_config(profile, seed)
        yield cfg, beyond_dir(results_dir) / run_id(cfg, fingerprint)


def beyond_plan(*, profile: str, data_path, seeds=(0,), results_dir=None, data=None, verbose: bool = False) -> list[dict]:
    """What :func:`train_beyond_runs` would train, training nothing: one entry per seed with
    ``run_id``, ``seed``, ``epochs``, ``done`` (epochs in its history) and ``to_train``.
    ``data``: an already loaded data set, used when it is at the recipe's image size."""
    cfg0 = beyond_config(profile)
    if cfg0 is None:
        return []
    from fer_utils.data import datasets

    if data is None or data.image_size != cfg0.image_size:
        data = datasets.load(data_path, image_size=cfg0.image_size, verbose=verbose)
    out = []
    for cfg, run_dir in _beyond_run_dirs(profile, data.fingerprint, seeds, results_dir):
        finished = str(cfg.epochs) in rundir.read_metrics(run_dir).get("evaluations", {})
        done = cfg.epochs if finished else min(len(rundir.read_history(run_dir)), cfg.epochs)
        out.append({"run_id": run_dir.name, "seed": cfg.seed, "epochs": cfg.epochs, "done": done, "to_train": cfg.epochs - done})
    return out


def beyond_runs(results_dir=None, *, profile: str | None = None, data: str | None = None) -> list[dict]:
    """Finished beyond runs (those with a test evaluation), newest last: ``{"run_id", "dir",
    "model_path", "epochs", "config", "data", "holdout", "test", "test_tta", "cost"}``.
    ``profile``: only its recipe (any seed); ``data``: only runs on that data fingerprint."""
    root = beyond_dir(results_dir)
    want = beyond_config(profile).to_dict() if profile else None
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            cfg, metrics = rundir.read_config(d), rundir.read_metrics(d)
        except FerError:
            continue
        if not cfg or "beyond" not in cfg or not metrics.get("evaluations"):
            continue
        if want is not None and {**cfg["beyond"], "seed": 0} != {**want, "seed": 0}:
            continue
        if data is not None and cfg.get("data") != data:
            continue
        epochs, ev = max(((int(e), v) for e, v in metrics["evaluations"].items()), key=lambda t: t[0])
        out.append({"run_id": d.name, "dir": d, "model_path": rundir.model_file(d, epochs), "epochs": epochs,
                    "config": cfg["beyond"], "data": cfg.get("data"), "holdout": ev.get("holdout"),
                    "test": ev.get("test"), "test_tta": ev.get("test_tta"), "cost": metrics.get("cost", {})})
    return out


def _final_candidate(profile: str, results_dir=None) -> dict | None:
    from fer_utils.study.experiments import final_model_path
    from fer_utils.training.store import load_run

    try:
        path = Path(final_model_path(profile, results_dir))
    except FerError:
        return None
    run = load_run(path.parent)
    epochs = int(path.stem.split("-e")[-1])
    ev = run.evaluation(epochs) or {}
    holdout = ev.get("final_row", {}).get("Val_accuracy") if run.config.selection == "holdout" else None
    test = ev.get("test") or {}
    return {"name": f"the report's CNN (final model of profile {profile}, run {run.id})", "kind": "report_cnn",
            "path": path, "data": run.config.data, "holdout_accuracy": holdout,
            "test_accuracy": test.get("accuracy"), "test_ci95": test.get("ci95"), "n_test": test.get("n")}


def candidates(profile: str = "demo", results_dir=None) -> list[dict]:
    """The study's final model of ``profile`` (when trained) and every finished beyond run on
    the same data (all beyond runs when there is no final model)."""
    out = []
    final = _final_candidate(profile, results_dir)
    if final:
        out.append(final)
    for r in beyond_runs(results_dir, data=final["data"] if final else None):
        if not Path(r["model_path"]).exists():
            continue
        test = r["test"] or {}
        out.append({"name": f"the beyond model (run {r['run_id']})", "kind": "beyond", "path": r["model_path"],
                    "data": r["data"], "holdout_accuracy": (r["holdout"] or {}).get("accuracy"),
                    "test_accuracy": test.get("accuracy"), "test_ci95": test.get("ci95"), "n_test": test.get("n")})
    return out


def best_model(profile: str = "demo", results_dir=None) -> dict:
    """The model that sorts when none is named: the best of :func:`candidates` by measured
    HOLDOUT accuracy, never by test accuracy.

    Rule: among the study's final model of ``profile`` and the finished beyond runs on the same
    data, the highest holdout accuracy wins (ties: the earlier candidate, the final model first).
    A model without a holdout measurement (the report's CNN trained with ``selection="test"``
    validates on the test split, so it has none) ranks below every model that has one; with no
    holdout measurement at all, the study's final model sorts. The test accuracy is carried
    along to be REPORTED, not to choose. Raises FerError when there is no model at all.
    """
    get_profile(profile)
    found = candidates(profile, results_dir)
    if not found:
        raise FerError(f"no trained model for profile {profile!r} (no results/tables/{profile}/table4.json and no "
                       f"beyond run): run the study first (fer run --profile {profile}) or pass --model FILE.keras")
    measured = [c for c in found if c["holdout_accuracy"] is not None]
    pick = max(measured, key=lambda c: c["holdout_accuracy"]) if measured else found[0]
    reason = (f"best holdout accuracy {pick['holdout_accuracy']:.4f} of {len(measured)} measured candidate(s)" if measured
              else "no candidate has a holdout measurement: the study's final model")
    return {**pick, "path": Path(pick["path"]), "rule": reason, "candidates": len(found)}


def named_model(path) -> dict:
    """A model named by the user (``--model``/``--run``): its test accuracy when it is a run's."""
    path = Path(path)
    out = {"name": f"the model {path}", "kind": "named", "path": path, "holdout_accuracy": None,
           "test_accuracy": None, "test_ci95": None, "n_test": None, "rule": "named by the user"}
    try:
        metrics = rundir.read_metrics(path.parent)
        ev = metrics.get("evaluations", {}).get(str(int(path.stem.split("-e")[-1])), {})
        test = ev.get("test") or {}
        out.update(test_accuracy=test.get("accuracy"), test_ci95=test.get("ci95"), n_test=test.get("n"))
    except (FerError, OSError, ValueError):
        pass
    return out


def choice_for(path, profile: str = "demo", results_dir=None) -> dict:
    """How ``path`` came to sort: :func:`best_model`'s record when it is that very file (``fer
    run`` passes it to notebook 05), else :func:`named_model` (a model the user named)."""
    try:
        best = best_model(profile, results_dir)
        if Path(best["path"]).resolve() == Path(path).resolve():
            return best
    except FerError:
        pass
    return named_model(path)


def sorted_by_line(choice: dict) -> str:
    """One line: which model sorted and its measured test accuracy (with its 95% interval)."""
    acc = choice.get("test_accuracy")
    if acc is None:
        measured = "test accuracy not measured"
    else:
        ci = choice.get("test_ci95")
        measured = f"measured test accuracy {acc:.1%}" + (f" (95% interval {ci[0]:.1%}-{ci[1]:.1%}, n={choice.get('n_test')})" if ci else "")
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
    p = Path(output) / SORTED_BY
    return json.loads(p.read_text()) if p.exists() else None
