"""Which model sorts a profile's faces: its candidates (the study's final model and the finished
runs of other models on the same data) and the rule of :func:`fer_utils.apply.choose.pick`.
``fer organize`` and notebook 05 call :func:`best_model`; :func:`choice_for` says how a given
model file came to sort.
"""

from __future__ import annotations

from pathlib import Path

from fer_utils.apply.choose import named_model, pick
from fer_utils.errors import FerError
from fer_utils.study.beyond import finished_runs
from fer_utils.study.profiles import get_profile


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


def _run_candidates(results_dir, data) -> list[dict]:
    """Every finished beyond run (on the data fingerprint ``data``, or any when None) whose model
    is there, as a candidate of :func:`~fer_utils.apply.choose.pick`."""
    out = []
    for r in finished_runs(results_dir, data=data):
        if not Path(r["model_path"]).exists():
            continue
        test = r["test"] or {}
        out.append({"name": f"the beyond model (run {r['run_id']})", "kind": "beyond", "path": r["model_path"],
                    "data": r["data"], "holdout_accuracy": (r["holdout"] or {}).get("accuracy"),
                    "test_accuracy": test.get("accuracy"), "test_ci95": test.get("ci95"), "n_test": test.get("n")})
    return out


def _checked(found: list[dict]) -> list[dict]:
    for c in found:  # the choice compares these numbers: a damaged metrics.json is named, not a TypeError
        for key in ("holdout_accuracy", "test_accuracy"):
            v = c[key]
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
                where = Path(c["path"]).parent / "metrics.json"
                raise FerError(f"{where}: the {key.replace('_', ' ')} should be a number from 0 to 1, got {v!r} (edited "
                               f"or damaged); restore the file or delete the run folder {where.parent} to train it again")
    return found


def candidates(profile: str = "demo", results_dir=None) -> list[dict]:
    """The study's final model of ``profile`` (when trained) and every finished beyond run on
    the same data (all beyond runs when there is no final model)."""
    final = _final_candidate(profile, results_dir)
    return _checked(([final] if final else []) + _run_candidates(results_dir, final["data"] if final else None))


def best_model(profile: str = "demo", results_dir=None) -> dict:
    """The model that sorts when none is named: :func:`fer_utils.apply.choose.pick` among
    :func:`candidates` (the study's final model of ``profile`` and the finished runs of other
    models on the same data), by HOLDOUT accuracy, never by test accuracy. Raises FerError
    when there is no model at all."""
    get_profile(profile)
    found = candidates(profile, results_dir)
    if not found:
        raise FerError(f"no trained model for profile {profile!r} (no results/tables/{profile}/table4.json and no "
                       f"beyond run): run the study first (fer run --profile {profile}) or pass --model FILE.keras")
    return pick(found)


def choice_for(path, profile: str = "demo", results_dir=None) -> dict:
    """How ``path`` came to sort: :func:`best_model`'s record when it is that very file (``fer
    run`` passes it to notebook 05), else :func:`~fer_utils.apply.choose.named_model` (a model the user named)."""
    try:
        best = best_model(profile, results_dir)
        if Path(best["path"]).resolve() == Path(path).resolve():
            return best
    except FerError:
        pass
    return named_model(path)


def default_model(results_dir=None, shipped_dir=None) -> dict:
    """The model that sorts real photos when the user names none (``fer organize`` without
    ``--model``, ``--run`` or ``--profile``): the shipped model, unless the store holds a finished
    run on the SAME data the shipped model was trained on (same fingerprint: real faces, decoded
    alike) with a higher HOLDOUT accuracy (:func:`fer_utils.apply.choose.pick`). A model trained on
    the synthetic faces is never a candidate here; name it with ``--model`` or ``--profile demo``."""
    from fer_utils.apply import shipped

    if not shipped.available(shipped_dir):
        raise FerError("no model named and no model ships with this installation; pass --model FILE.keras, --run RUN_ID "
                       "or --profile PROFILE (a study's final model)")
    ship = shipped.choice(shipped_dir)
    runs = [c for c in _checked(_run_candidates(results_dir, ship["data"])) if c["holdout_accuracy"] is not None]
    found = [ship] + [{**c, "test_set": ship.get("test_set")} for c in runs]
    best = pick(found)
    if best["kind"] == shipped.NAME:
        best["rule"] = (f"the model that ships in the package ({len(found) - 1} run(s) on the same data in the store, "
                        f"none better by holdout accuracy)")
    return best
