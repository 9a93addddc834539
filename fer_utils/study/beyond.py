"""The runs of other models a profile trains beside the report's CNN (the beyond profiles).

A profile's ``models`` names presets of :data:`fer_utils.models.registry.PRESETS` (``resnet``,
``resnet-smoke``); each gives one run per seed on the profile's data, in the one run store
(``results/runs/``), trained by the engine with the rest of the study's plan
(:func:`plan_entries`). :func:`finished_runs` lists those that have been scored, for the report
and the choice of the model that sorts (:mod:`fer_utils.study.choice`).
"""

from __future__ import annotations

from pathlib import Path

from fer_utils import paths
from fer_utils.errors import FerError
from fer_utils.study.profiles import get_profile
from fer_utils.training import rundir
from fer_utils.training.config import RunConfig


def preset_config(name: str, data: str, seed: int = 0) -> RunConfig:
    """The run configuration of the preset ``name`` on the data fingerprint ``data``."""
    from fer_utils.models.registry import preset

    model, fields = preset(name)
    return RunConfig(data=data, model=model, **{**fields, "seed": int(seed)})


def image_sizes(profile: str) -> dict[str, int]:
    """``{preset: image size}`` of the profile's other models (``{}`` for none)."""
    return {name: preset_config(name, "").image_size for name in get_profile(profile).models}


def model_configs(profile: str, *, data_path, seeds=(0,), data=None, verbose: bool = False,
                  loaded: dict | None = None, read_only: bool = False) -> list[tuple[str, RunConfig]]:
    """``(preset, config)`` of every other-model run of the profile, one per seed. The data
    fingerprint is the data set's at the preset's image size (``data`` is used when it is
    loaded at that size; else the set is loaded from ``data_path``, through the decode cache).
    ``loaded``: a dict that receives ``{image size: Dataset}`` of what was loaded, for reuse."""
    out, loaded = [], {} if loaded is None else loaded
    for name, size in image_sizes(profile).items():
        if size not in loaded:
            if data is not None and data.image_size == size:
                loaded[size] = data
            else:
                from fer_utils.data import datasets
                from fer_utils.data.info import peek

                if not read_only:
                    loaded[size] = datasets.load(data_path, image_size=size, verbose=verbose)
                else:  # fer run --plan: nothing decoded or written (an empty fingerprint: never decoded at that size)
                    loaded[size] = peek(data_path, size) if Path(data_path).exists() else None
        if loaded[size] is None:
            out += [(name, preset_config(name, "", seed)) for seed in (seeds or (0,))]
            continue
        out += [(name, preset_config(name, loaded[size].fingerprint, seed)) for seed in (seeds or (0,))]
    return out


def plan_entries(profile: str, *, data_path, seeds=(0,), store_root=None, data=None, read_only: bool = False) -> list[dict]:
    """The profile's other-model runs as entries of a study plan (the engine's input): run_id,
    config, epochs, keep, tables (the preset's name), done, to_train."""
    from fer_utils.training.engine import plan_entry
    from fer_utils.training.trainer import target_epochs

    root = Path(store_root) if store_root is not None else paths.RUNS_DIR
    return [plan_entry(cfg, target_epochs(cfg), root, tables=[name])
            for name, cfg in model_configs(profile, data_path=data_path, seeds=seeds, data=data, read_only=read_only)]


def finished_runs(results_dir=None, *, profile: str | None = None, data: str | None = None) -> list[dict]:
    """Scored runs of models other than the report's CNN in ``<results>/runs``, by run id:
    ``{"run_id", "dir", "model_path", "epochs", "config", "data", "holdout", "test", "test_tta",
    "cost", "data_source"}``. ``profile``: only its presets' recipes (any seed); ``data``: only that fingerprint."""
    from fer_utils.training.store import RunStore

    root = (Path(results_dir) if results_dir else paths.RESULTS_DIR) / "runs"
    want = None
    if profile:
        want = [{**preset_config(n, "").to_dict(), "seed": 0, "data": ""} for n in get_profile(profile).models]
    out = []
    for run in RunStore(root).runs(include_corrupt=True):
        if run.problem or run.config.model == "report_cnn" or not run.metrics.get("evaluations"):
            continue
        cfg = run.config.to_dict()
        if want is not None and {**cfg, "seed": 0, "data": ""} not in want:
            continue
        if data is not None and cfg["data"] != data:
            continue
        epochs, ev = max(((int(e), v) for e, v in run.metrics["evaluations"].items()), key=lambda t: t[0])
        out.append({"run_id": run.id, "dir": run.dir, "model_path": rundir.model_file(run.dir, epochs), "epochs": epochs,
                    "config": cfg, "data": cfg["data"], "holdout": ev.get("holdout"), "test": ev.get("test"),
                    "test_tta": ev.get("test_tta"), "cost": run.metrics.get("cost", {}),
                    "data_source": run.metrics.get("data_source")})
    return out


def ensure_runs(profile: str, *, data_path, seeds=(0,), verbose: bool = True) -> list[Path]:
    """Train (or find finished) the profile's other-model runs; return their folders in the
    order of :func:`model_configs` (what notebook 07 compares)."""
    from fer_utils.training.store import RunStore

    loaded: dict = {}
    configs = model_configs(profile, data_path=data_path, seeds=seeds, verbose=verbose, loaded=loaded)
    if not configs:
        raise FerError(f"profile {profile!r} trains no model beside the report's CNN; use profile 'beyond' or 'beyond-smoke'")
    store, out = RunStore(), []
    for _, cfg in configs:
        out.append(store.ensure(cfg, None, loaded[cfg.image_size], verbose=verbose).dir)
    return out
