"""The four one-factor sweeps (Tables 1-4) as rows of runs, the plan, and the table manifests.

A table is a list of rows; a row is (grid value, RunConfig, epochs). Rows that share a
configuration share a run: Table 1's lr=0.001 row is the first 50 epochs of Table 2's
1000-epoch run, and Table 3's depth-4 row is Table 4's batch-64 configuration. The run store
trains each configuration once, to the largest epoch count any row asks of it.

:func:`plan` lists every run of a study (each table, each seed, and the final model) to its
largest epoch count: the engine (:mod:`fer_utils.training.engine`) trains it. Each experiment notebook
calls :func:`setup` then :func:`run_table`, which finds its epochs trained (or trains them) and
writes the table's manifest (``results/tables/<profile>/table<N>.json``: which runs and epochs
made each row, and the picks); the report reads the manifests and the run store, trains nothing.

This module launches no notebook and imports neither the report nor the notebooks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path


from fer_utils import paths
from fer_utils.atomic import atomic_write_json
from fer_utils.study.protocol import (
    RAF_DB_TRAIN,
    REPORT_CHOICES,
    REPORT_PROTOCOL,
    TABLE_CAPTIONS,
    final_value,
    pick,
    report_equivalent,
    same_value,
)
from fer_utils.study.profiles import Profile, get_profile
from fer_utils.study.tables import TABLE_NOTEBOOKS, TABLES, TableResult, load_table, manifest_path, read_manifest
from fer_utils.training.config import RunConfig
from fer_utils.errors import ConfigError, FerError

CHAINS = ("report", "selected")


# ---------------------------------------------------------------------------------------------
# Setting up an experiment: profile + data + protocol


@dataclass
class Experiment:
    profile: Profile
    data: object  # fer_utils.data.datasets.Dataset
    seeds: tuple[int, ...]
    selection: str
    chain: str
    store: object  # fer_utils.training.store.RunStore
    data_path: Path | None = None  # where ``data`` was read from (engine workers reload it)
    read_only: bool = False  # made for a plan (setup(read_only=True)): nothing may be decoded or written

    def describe(self) -> str:
        p = self.profile
        lines = [
            f"profile    {p.name}: {p.description}",
            f"epochs     scaled {p.epoch_scale}",
            f"data       {self.data.describe()}",
            f"seeds      {list(self.seeds)}",
            f"selection  {self.selection}" + ("  (the report's: validate and select on the TEST split)" if self.selection == "test" else "  (validate on a held-out 10% of train; test evaluated once per run)"),
            f"chain      {self.chain}" + ("  (later tables use the report's choices: lr 0.001, 100 epochs, depth 4)" if self.chain == "report" else "  (later tables use the earlier tables' picks)"),
            f"run store  {self.store.root}",
        ]
        if self.data.synthetic:
            lines.insert(0, "NOTE: the data is the SYNTHETIC stand-in, not RAF-DB; numbers are not comparable to the report's.")
        return "\n".join(lines)


def default_data(profile: Profile) -> Path:
    """The profile's default data set; demo/smoke make their synthetic set when it is missing."""
    if profile.data != "synthetic":
        raise ConfigError(
            f"profile {profile.name!r} has no embedded data: pass the RAF-DB folder or zip "
            f"(--data /path/to/raf-basic.zip, or DATA=... for make)"
        )
    target = paths.synthetic_dir(profile.name)
    if not (target / "SYNTHETIC.md").exists():
        from fer_utils.data.synthetic import generate

        print(f"Generating the synthetic data set in {target} ...", flush=True)
        generate(target, **profile.synthetic)
    return target


def unmade_synthetic(profile: Profile, path: Path):
    """What a plan knows of a profile's synthetic set before it is generated: its size."""
    import numpy as np

    from fer_utils.data.datasets import CLASS_NAMES, Dataset

    n = profile.synthetic
    empty = np.zeros((0, profile.image_size, profile.image_size, 3), np.uint8)
    return Dataset(x_train=empty, y_train=np.zeros(n["n_train"], np.int64), x_test=empty, y_test=np.zeros(n["n_test"], np.int64),
                   names_train=[], names_test=[], class_names=CLASS_NAMES, layout="report", source=str(path),
                   image_size=profile.image_size, fingerprint="", synthetic=True)


def faces_for(data: str) -> str | None:
    """Unlabelled faces for the sorting step: the synthetic set's own, else the UTKFace sample
    beside the project (../shared/data), else None (the step is skipped, and says so)."""
    own = Path(data) / "unlabelled"
    if own.is_dir():
        return str(own)
    utk = paths.SHARED_DATA / "utkface-sample.zip"
    return str(utk) if utk.exists() else None


def check_seeds(seeds) -> tuple[int, ...]:
    """Seeds as a tuple of integers >= 0 (raises a ConfigError naming the bad value)."""
    try:
        out = tuple(int(s) for s in seeds)
    except (TypeError, ValueError):
        raise ConfigError(f"seeds {seeds!r}: expected integers 0 or more, e.g. 0,1,2") from None
    bad = [s for s in out if s < 0]
    if bad:
        raise ConfigError(f"seeds {list(out)}: {bad[0]} is negative; expected integers 0 or more, e.g. --seeds 0,1,2")
    big = [s for s in out if s >= 2**32]
    if big:
        raise ConfigError(f"seeds {list(out)}: {big[0]} is past {2**32 - 1}, the largest seed; e.g. --seeds 0,1,2")
    twice = sorted({s for s in out if out.count(s) > 1})
    if twice:
        raise ConfigError(f"seeds {list(out)}: {twice[0]} is given twice (a mean over seeds would count it twice); "
                          f"give each seed once, e.g. --seeds 0,1,2")
    return out


def setup(profile="demo", data="", seeds=None, selection="test", chain="report", overrides=None, verbose=True,
          read_only: bool = False) -> Experiment:
    """Resolve a profile, load its data (cached) and open the run store. Prints the config.

    ``seeds`` empty or None: the profile's seeds. ``data`` empty: the profile's default data.
    ``read_only`` (``fer run --plan``): nothing is decoded, generated or written; the data is
    what :func:`fer_utils.data.info.peek` knows of it (its fingerprint empty when it was never
    decoded at this size: the plan then cannot name run ids).
    """
    from fer_utils.training import backend
    from fer_utils.data import datasets
    from fer_utils.training.store import RunStore

    backend.quiet()
    prof = get_profile(profile, **(overrides or {}))
    if selection not in ("test", "holdout"):
        raise ConfigError(f"selection {selection!r}: expected 'test' (the report's) or 'holdout'")
    if chain not in CHAINS:
        raise ConfigError(f"chain {chain!r}: expected one of {CHAINS}")
    seeds = check_seeds(seeds if seeds not in (None, [], ()) else prof.seeds)
    if read_only:
        from fer_utils.data.info import peek

        path = Path(data).expanduser().resolve() if data else paths.synthetic_dir(prof.name)
        ds = peek(path, prof.image_size) if path.exists() else unmade_synthetic(prof, path)
    else:
        path = Path(data).expanduser().resolve() if data else default_data(prof)
        ds = datasets.load(path, image_size=prof.image_size, verbose=verbose)
    exp = Experiment(prof, ds, seeds, selection, chain, RunStore(), data_path=path, read_only=read_only)
    if verbose:
        print(exp.describe(), flush=True)
    return exp


# ---------------------------------------------------------------------------------------------
# Rows of a table, the final model, the plan


@dataclass(frozen=True)
class Row:
    table: int
    value: float
    seed: int
    cfg: RunConfig
    epochs: int


def chain_values(exp: Experiment, upto: int) -> dict:
    """lr, epochs and depth that table ``upto`` builds on (the report's, or the earlier picks)."""
    p = exp.profile
    vals = {"lr": p.base_lr, "epochs": p.chosen_epochs, "depth": p.chosen_depth}
    if exp.chain == "selected":
        for t, key in ((1, "lr"), (2, "epochs"), (3, "depth")):
            if t < upto:
                man = read_manifest(exp.profile.name, t)
                if man is None:
                    raise FerError(f"chain 'selected': table {t} has no results yet ({manifest_path(exp.profile.name, t)}); run notebook {TABLE_NOTEBOOKS[t]} first")
                vals[key] = man["picks"]["sound" if exp.selection == "holdout" else "report"]
    return vals


def table_rows(exp: Experiment, table: int) -> list[Row]:
    p, ch = exp.profile, chain_values(exp, table)
    base = dict(data=exp.data.fingerprint, image_size=p.image_size, selection=exp.selection)
    rows = []
    for seed in exp.seeds:
        if table == 1:
            rows += [Row(1, lr, seed, RunConfig(lr=lr, depth=p.base_depth, batch_size=p.base_batch, seed=seed, **base), p.lr_epochs) for lr in p.lr_grid]
        elif table == 2:
            cfg = RunConfig(lr=ch["lr"], depth=p.base_depth, batch_size=p.base_batch, seed=seed, **base)
            rows += [Row(2, e, seed, cfg, e) for e in p.epochs_grid]
        elif table == 3:
            rows += [Row(3, d, seed, RunConfig(lr=ch["lr"], depth=d, batch_size=p.base_batch, seed=seed, **base), ch["epochs"]) for d in p.depth_grid]
        elif table == 4:
            rows += [Row(4, b, seed, RunConfig(lr=ch["lr"], depth=ch["depth"], batch_size=b, seed=seed, **base), ch["epochs"]) for b in p.batch_grid]
        else:
            raise ConfigError(f"table {table!r}: expected 1, 2, 3 or 4")
    return rows


def final_batch_size(profile: Profile, batch: int, n_train: int) -> int:
    """The final model's batch size: Table 4's ``batch``, or with ``profile.scale_final_batch``
    that batch scaled to the data size, so an epoch takes as many optimizer steps as on RAF-DB.

    >>> from fer_utils.study.profiles import PROFILES
    >>> final_batch_size(PROFILES["demo"], 2048, 1500), final_batch_size(PROFILES["full"], 2048, 12271)
    (250, 2048)
    """
    return max(1, round(batch * n_train / RAF_DB_TRAIN)) if profile.scale_final_batch else int(batch)


def final_rows(exp: Experiment, value) -> list[Row]:
    """The final model's runs (one per seed) for Table 4's row at ``value``: that row exactly,
    or with the profile's final changes (``final_epochs``, ``scale_final_batch``)."""
    rows = [r for r in table_rows(exp, 4) if same_value(r.value, value)]
    p = exp.profile
    batch = final_batch_size(p, int(value), len(exp.data.y_train))
    return [Row(4, r.value, r.seed, r.cfg.replace(batch_size=batch), p.final_epochs or r.epochs) for r in rows]


def planned_final_value(exp: Experiment) -> float | None:
    """Table 4's row the final model comes from, when it is known before Table 4 has run: the
    report's choice under ``chain="report"`` (where the grid has it); else None."""
    if exp.chain != "report":
        return None
    chosen = float(REPORT_CHOICES[4]["value"])
    prof = exp.profile.to_dict()
    return next((float(b) for b in exp.profile.batch_grid if same_value(report_equivalent(4, b, prof), chosen)), None)


def plan(exp: Experiment, tables=TABLES, final: bool | None = None, models: bool = False) -> dict:
    """Which runs need how many epochs, what the store already has, and the total to train.

    ``final`` (default: when Table 4 is planned): include the final model's runs where they
    are known in advance (:func:`planned_final_value`). ``models``: include the runs of the
    profile's other models (:func:`fer_utils.study.beyond.plan_entries`; their ``tables`` is the
    preset's name). Each run: run_id, config (a dict), epochs (the largest any row asks), keep
    (the epoch counts whose model is kept and scored), tables, done, to_train.
    """
    rows = [r for t in tables for r in table_rows(exp, t)]
    extra = []
    if final if final is not None else 4 in tables:
        value = planned_final_value(exp)
        if value is not None:
            extra = final_rows(exp, value)
    need: dict[str, dict] = {}
    for r, tag in [(r, r.table) for r in rows] + [(r, "final") for r in extra]:
        n = need.setdefault(r.cfg.run_id, {"run_id": r.cfg.run_id, "config": r.cfg.to_dict(), "epochs": 0, "keep": set(), "tables": []})
        n["epochs"] = max(n["epochs"], r.epochs)
        n["keep"].add(r.epochs)
        if tag not in n["tables"]:
            n["tables"].append(tag)
    runs = []
    known = bool(exp.data.fingerprint)  # else never decoded at this size (a read-only plan): no run id yet
    for n in need.values():
        done = exp.store.epochs_done(RunConfig.from_dict(n["config"])) if known else 0
        runs.append({**n, "keep": sorted(n["keep"]), "done": done, "to_train": max(0, n["epochs"] - done)})
    if models:
        from fer_utils.study.beyond import plan_entries

        runs += plan_entries(exp.profile.name, data_path=exp.data_path, seeds=exp.seeds, store_root=exp.store.root, data=exp.data,
                             read_only=exp.read_only)
    out = {
        "profile": exp.profile.name,
        "data": exp.data.fingerprint,
        "seeds": list(exp.seeds),
        "selection": exp.selection,
        "chain": exp.chain,
        "runs": runs,
        "n_runs": len(runs),
        "total_epochs": sum(r["epochs"] for r in runs),
        "epochs_to_train": sum(r["to_train"] for r in runs),
        "epochs_without_reuse": sum(r.epochs for r in rows) + sum(r.epochs for r in extra if (r.cfg.run_id, r.epochs) not in
                                                                 {(t.cfg.run_id, t.epochs) for t in rows})
                                + sum(r["epochs"] for r in runs if r["run_id"] not in need),
    }
    for r in runs:
        if not r["config"]["data"]:  # its id would be made from no data: none is given, nothing is done
            r.update(run_id=None, done=0, to_train=r["epochs"])
    out["decoded"] = all(r["run_id"] for r in runs)
    out["epochs_to_train"] = sum(r["to_train"] for r in runs)
    return out


# ---------------------------------------------------------------------------------------------
# Running a table (its manifest is read back by fer_utils.study.tables)


def run_table(exp: Experiment, table: int, verbose: bool = True) -> TableResult:
    """Train what the table needs (through the run store), write its manifest, return it.

    Table 4 also brings the final model's runs to their epochs (:func:`final_rows`)."""
    rows = table_rows(exp, table)
    keep: dict[str, set] = {}
    for r in rows:
        keep.setdefault(r.cfg.run_id, set()).add(r.epochs)
    t0 = time.perf_counter()
    for r in rows:
        if max(keep[r.cfg.run_id]) == r.epochs:  # train each configuration once, to its largest count
            exp.store.ensure(r.cfg, r.epochs, exp.data, keep_epochs=sorted(keep[r.cfg.run_id]), verbose=verbose)
    manifest = {
        "table": table,
        "caption": TABLE_CAPTIONS[table],
        "factor": REPORT_PROTOCOL[table]["factor"],
        "profile": exp.profile.to_dict(),
        "seeds": list(exp.seeds),
        "selection": exp.selection,
        "chain": exp.chain,
        "chain_values": chain_values(exp, table),
        "data": {"fingerprint": exp.data.fingerprint, "source": exp.data.source, "layout": exp.data.layout,
                 "synthetic": exp.data.synthetic, "image_size": exp.data.image_size,
                 "n_train": int(len(exp.data.y_train)), "n_test": int(len(exp.data.y_test))},
        "rows": [{"value": r.value, "seed": r.seed, "epochs": r.epochs, "run_id": r.cfg.run_id} for r in rows],
    }
    result = load_table(manifest, exp.store)
    manifest["picks"] = {
        "report": pick(result.mean, REPORT_CHOICES[table]["rule"]),
        "sound": pick(result.mean, "max Val_accuracy") if exp.selection == "holdout" else None,
    }
    if table == 4:
        value = final_value(manifest)
        fin = final_rows(exp, value)
        for r in fin:
            exp.store.ensure(r.cfg, r.epochs, exp.data, keep_epochs=sorted(keep.get(r.cfg.run_id, set()) | {r.epochs}), verbose=verbose)
        manifest["final"] = {"value": value, "batch_size": fin[0].cfg.batch_size, "epochs": fin[0].epochs,
                             "rows": [{"seed": r.seed, "epochs": r.epochs, "run_id": r.cfg.run_id} for r in fin]}
    manifest["seconds"] = time.perf_counter() - t0
    result = load_table(manifest, exp.store)
    atomic_write_json(manifest_path(exp.profile.name, table), manifest)
    return result


# ---------------------------------------------------------------------------------------------
# The report's grid beside ours, and the study's final model


def final_model_path(profile: str = "demo", results_dir=None) -> Path:
    """The study's final model file, exactly the one ``fer run`` sorts with: Table 4's final
    run (``manifest["final"]``, first seed) at its epochs. Raises FerError when not trained."""
    from fer_utils.training.store import RunStore

    get_profile(profile)
    man = read_manifest(profile, 4, results_dir)
    if man is None:
        raise FerError(f"no trained model for profile {profile!r}: {manifest_path(profile, 4, results_dir)} is missing. "
                       f"Run the experiments first (fer run --profile {profile}) or pass --model FILE.keras")
    store = RunStore(Path(results_dir) / "runs") if results_dir is not None else RunStore()
    if "final" in man:
        row = man["final"]["rows"][0]
    else:  # a manifest written before the final model had its own entry: Table 4's row
        value = final_value(man)
        row = next(r for r in man["rows"] if math.isclose(float(r["value"]), float(value)))
    path = store.load(row["run_id"]).model_path(row["epochs"])
    if not Path(path).exists():
        raise FerError(f"{path}: the final model of profile {profile!r} is missing (a published folder has no models); "
                       f"train it with fer run --profile {profile}, or pass --model FILE.keras")
    return path

