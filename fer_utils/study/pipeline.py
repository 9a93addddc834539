"""The whole study, as ``fer run`` and ``fer tables`` run it: check, train the plan, narrate.

:func:`run_study` reads top-down as the pipeline: it checks every argument and the destination
first (nothing is trained or written before they pass), trains the plan through the engine
(:func:`fer_utils.training.engine.train_plan`: sequentially, or on Dask workers), then executes the
notebooks, which find every epoch done and train nothing, and exports the report. Under
``chain="selected"`` a table's runs depend on the earlier tables' picks, so it trains and
executes table by table. :func:`run_tables` is the same without Jupyter: it trains and prints
Tables 1-4 and writes their manifests, so ``fer report`` can assemble the report afterwards.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from fer_utils import paths
from fer_utils.study.protocol import BEYOND_NOTEBOOKS, STUDY_NOTEBOOKS
from fer_utils.study.profiles import get_profile
from fer_utils.training.config import SELECTIONS
from fer_utils.errors import ConfigError, DataError, FerError
from fer_utils.training.clusters import check_engine, check_gpus
from fer_utils.study.experiments import CHAINS, TABLE_NOTEBOOKS, TABLES, check_seeds, faces_for, plan, run_table, setup

#: Every notebook a study can run, in order; a profile runs its own list (``Profile.notebooks``).
NOTEBOOKS = BEYOND_NOTEBOOKS
_NOTEBOOK_TABLE = {v: k for k, v in TABLE_NOTEBOOKS.items()}


# ---------------------------------------------------------------------------------------------
# Checks, all before any work


def check_arguments(*, profile, data=None, seeds=None, selection="test", chain="report", workers=None,
                    gpus=None, workers_per_gpu=None, threads=None, scheduler=None, jit_epochs=False,
                    reach_scheduler=False) -> dict:
    """Every argument of a study, checked once (one-line errors naming the argument and the fix).
    ``reach_scheduler``: also ask ``scheduler`` whether it is a Dask scheduler (the run, not the
    plan, which only reads), so that one that is not there fails in seconds, before the data loads.

    ``seeds`` None means the profile's; an empty list is an error (``--seeds ,``)."""
    from fer_utils.training.clusters import probe

    prof = get_profile(profile)
    if seeds is not None:
        seeds = check_seeds(seeds)
        if not seeds:
            raise ConfigError("--seeds: no seed given; expected comma-separated integers 0 or more, e.g. --seeds 0,1,2 "
                              "(leave --seeds out for the profile's seeds)")
    if selection not in SELECTIONS:
        raise ConfigError(f"--selection {selection!r}: expected one of {', '.join(SELECTIONS)}")
    if chain not in CHAINS:
        raise ConfigError(f"--chain {chain!r}: expected one of {', '.join(CHAINS)}")
    check_engine(workers=workers, gpus=gpus, workers_per_gpu=workers_per_gpu, threads=threads, scheduler=scheduler,
                 jit_epochs=jit_epochs)
    if data:
        path = Path(data).expanduser()
        if not path.exists():
            raise DataError(f"--data {data}: no such file or folder; pass the RAF-DB folder or .zip"
                            + (" (or leave --data out for the synthetic set)" if prof.data == "synthetic" else ""))
    elif prof.data != "synthetic":
        raise ConfigError(f"profile {profile!r} has no embedded data: pass the RAF-DB folder or zip "
                          f"(--data /path/to/raf-basic.zip, or DATA=... for make)")
    check_writable(paths.RESULTS_DIR)
    if scheduler and reach_scheduler:
        probe(scheduler)
    return {"profile": profile, "data": str(Path(data).expanduser().resolve()) if data else "", "seeds": seeds,
            "selection": selection, "chain": chain}


def check_notebooks(names, profile: str | None = None) -> list[str]:
    """The notebooks to run, in the study's order (all of the profile's when ``names`` is None;
    ``profile`` None: the report's study, 00 to 06)."""
    mine = get_profile(profile).notebooks if profile else STUDY_NOTEBOOKS
    available = [n for n in mine if (paths.NOTEBOOKS_DIR / f"{n}.ipynb").exists()]
    if names is None:
        return available
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ConfigError(f"--notebooks: no notebook named; expected comma-separated names from {', '.join(available)}")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"--notebooks: unknown notebook {unknown[0]!r}; expected names from {', '.join(available)}")
    return [n for n in available if n in names]


def check_writable(folder) -> None:
    """``folder`` can be created or written to (raises FerError naming it and the fix)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise FerError(f"{probe}: a file stands where the folder {folder} is needed; move that file away or set FER_HOME to another folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise FerError(f"{probe}: not writable, so {folder} cannot be written; fix its permissions or set FER_HOME to a writable folder")


def print_plan(p: dict, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(p, indent=2))
        return
    print(f"{p['n_runs']} runs, {p['total_epochs']} epochs in all ({p['epochs_without_reuse']} without reuse), "
          f"{p['epochs_to_train']} still to train:")
    for r in p["runs"]:
        if all(isinstance(t, int) for t in r["tables"]):
            what = "tables " + ", ".join(map(str, r["tables"]))
        else:
            what = f"model {r['config']['model']} (preset {', '.join(map(str, r['tables']))}), seed {r['config']['seed']}"
        print(f"  {r['run_id'] or '(run id once decoded)'}: {what}, {r['epochs']} epochs (have {r['done']}, train {r['to_train']})")
    if not p.get("decoded", True):
        print("note: the data set has not been decoded at this size on this machine, so the plan cannot name run ids or "
              "see finished runs (the run id is a hash of the decoded faces); every epoch is counted as still to train. "
              "The plan decodes nothing; 'fer run' without --plan decodes the data first.")


def _train(exp, p: dict, workers, scheduler, progress: bool = True, engine: dict | None = None) -> None:
    """Train the plan ``p`` through :func:`fer_utils.training.engine.train_plan`; ``engine``: its
    ``gpus``, ``workers_per_gpu`` and ``threads`` (None values left to the engine's defaults)."""
    from fer_utils.training.engine import train_plan

    if p["epochs_to_train"] == 0:
        return
    extra = {k: v for k, v in (engine or {}).items() if v is not None}
    train_plan(p, data_path=exp.data_path, store_root=exp.store.root,
               workers=workers, scheduler=scheduler, progress=progress, data=exp.data, **extra)


# ---------------------------------------------------------------------------------------------
# fer run


def run_study(*, profile: str, data=None, seeds=None, selection: str = "test", chain: str = "report", notebooks=None,
              plan_only: bool = False, as_json: bool = False, workers: int | None = None, scheduler: str | None = None,
              gpus=None, workers_per_gpu: int | None = None, threads: int | None = None, jit_epochs: bool = False) -> int:
    """The study: train the plan (with, for a profile with ``models``, those models' runs), then
    execute the profile's notebooks in order into results/executed/, then export the report
    (results/report.html, .pdf). Returns 0.

    ``workers``/``scheduler``/``gpus``/``workers_per_gpu``/``threads``: how the engine trains
    the plan (:func:`fer_utils.training.engine.train_plan`). Notebook 05 sorts with
    :func:`fer_utils.study.choice.best_model` (best holdout accuracy; never test).

    A failing notebook stops the chain and raises :class:`~fer_utils.errors.NotebookError`; its
    executed copy is kept as ``<name>.failed.ipynb`` and the earlier good copy is untouched.
    ``plan_only``: print what would be trained (``as_json``: as JSON), train nothing.
    """
    from fer_utils.study.notebooks import execute, export_report

    if as_json and not plan_only:
        raise ConfigError("--json: prints the plan, so it needs --plan (fer run --plan --json); without --plan the study "
                          "would be trained")
    args = check_arguments(profile=profile, data=data, seeds=seeds, selection=selection, chain=chain, workers=workers,
                           gpus=gpus, workers_per_gpu=workers_per_gpu, threads=threads, scheduler=scheduler,
                           jit_epochs=jit_epochs, reach_scheduler=not plan_only)
    engine = {"gpus": check_gpus(gpus), "workers_per_gpu": workers_per_gpu, "threads": threads, "jit_epochs": jit_epochs or None}
    todo = check_notebooks(notebooks, profile)
    exp = setup(profile=profile, data=args["data"], seeds=list(args["seeds"] or ()), selection=selection, chain=chain,
                verbose=not as_json, read_only=plan_only)
    tables = [_NOTEBOOK_TABLE[n] for n in todo if n in _NOTEBOOK_TABLE]
    needs_final = "05_organize" in todo or 4 in tables
    needs_models = "07_beyond" in todo or "05_organize" in todo  # another model may sort, so before 05
    if plan_only:
        print_plan(plan(exp, tables=tuple(tables) or TABLES, models=needs_models), as_json)
        return 0
    from fer_utils.study.notebooks import already_shown

    already_shown(exp.describe())  # printed above: the notebooks' copies of it are not echoed again
    data_path = str(exp.data_path)
    params = {"profile": profile, "data": data_path, "seeds": list(exp.seeds) if seeds is not None else [],
              "selection": selection, "chain": chain}
    t_all = time.perf_counter()
    if chain == "report":  # every run is known in advance: train them all first, longest first
        _train(exp, plan(exp, tables=tuple(tables), final=needs_final, models=needs_models), workers, scheduler, engine=engine)
    elif needs_models:  # the tables' runs follow the earlier picks (below); the other models' do not
        _train(exp, plan(exp, tables=(), final=False, models=True), workers, scheduler, engine=engine)
    for name in todo:
        t0 = time.perf_counter()
        p = dict(params)
        if name in _NOTEBOOK_TABLE and chain == "selected":  # this table's runs follow the earlier picks
            t = _NOTEBOOK_TABLE[name]
            _train(exp, plan(exp, tables=(t,), final=t == 4), workers, scheduler, engine=engine)
        if name == "05_organize":
            faces = faces_for(data_path)
            if faces is None:
                print(f"== {name}: skipped (no unlabelled faces: neither {data_path}/unlabelled nor {paths.SHARED_DATA}/utkface-sample.zip)")
                continue
            from fer_utils.study.choice import best_model

            p.update(faces=faces, model_path=str(best_model(profile)["path"]), output=str(paths.RESULTS_DIR / "organized"))
        if name == "06_report":
            print("== 06_report: assembling the report (trains nothing)", flush=True)
            export_report(profile=profile)
            continue
        print(f"== {name}: {p}", flush=True)
        dest = execute(name, paths.EXECUTED_DIR / f"{name}.ipynb", p)
        print(f"== {name}: done in {time.perf_counter() - t0:.0f}s -> {dest}", flush=True)
    print(f"Ran {len(todo)} notebooks in {time.perf_counter() - t_all:.0f}s; executed copies in {paths.EXECUTED_DIR}")
    return 0


# ---------------------------------------------------------------------------------------------
# fer tables


def check_tables(tables) -> tuple[int, ...]:
    if tables is None:
        return TABLES
    given = tables if isinstance(tables, str) else ",".join(map(str, tables))
    if isinstance(tables, str):
        tables = [t for t in tables.split(",") if t.strip()]
    try:
        listed = [int(t) for t in tables]
    except (TypeError, ValueError):
        listed = []
    out = tuple(sorted(set(listed)))
    if not out or any(t not in TABLES for t in out):
        raise ConfigError(f"--tables {given!r}: expected table numbers from 1 to 4, e.g. --tables 1,3")
    return out  # a table named twice is one table (nothing is counted twice, unlike a seed)


def run_tables(*, profile: str, data=None, seeds=None, selection: str = "test", chain: str = "report", tables=None,
               workers: int | None = None, scheduler: str | None = None, quiet: bool = False,
               gpus=None, workers_per_gpu: int | None = None, threads: int | None = None, jit_epochs: bool = False) -> int:
    """Train Tables 1-4 (or ``tables``) without Jupyter and print each beside the report's, as
    the experiment notebooks do; the table manifests are written, so ``fer report`` can then
    assemble the report from the run store. Ends with a ``RESULT`` line. Returns 0."""
    from fer_utils.study.claims import report_vs_ours, said_vs_got
    from fer_utils.study.report import final_model, final_protocol_note, test_columns_table

    tables = check_tables(tables)
    args = check_arguments(profile=profile, data=data, seeds=seeds, selection=selection, chain=chain, workers=workers,
                           gpus=gpus, workers_per_gpu=workers_per_gpu, threads=threads, scheduler=scheduler,
                           jit_epochs=jit_epochs, reach_scheduler=True)
    engine = {"gpus": check_gpus(gpus), "workers_per_gpu": workers_per_gpu, "threads": threads, "jit_epochs": jit_epochs or None}
    t0 = time.perf_counter()
    exp = setup(profile=profile, data=args["data"], seeds=list(args["seeds"] or ()), selection=selection, chain=chain)
    import keras

    print(f"backend {keras.backend.backend()}, keras {keras.__version__}")
    if chain == "report":
        p = plan(exp, tables=tables)
        print(f"plan: {p['n_runs']} runs, {p['total_epochs']} epochs, {p['epochs_to_train']} to train", flush=True)
        _train(exp, p, workers, scheduler, progress=not quiet, engine=engine)
    for t in tables:
        if chain == "selected":
            _train(exp, plan(exp, tables=(t,)), workers, scheduler, progress=not quiet, engine=engine)
        res = run_table(exp, t, verbose=not quiet)
        print(f"\n{res.caption} ({profile}, selection={selection}, seeds={list(exp.seeds)})")
        print(report_vs_ours(res).to_string())
        extra = test_columns_table(res)
        if extra is not None:
            print(extra.to_string())
        print(said_vs_got(res), flush=True)
        if t == 4:
            fin = final_model({4: res})
            if fin and fin["evaluations"]:
                print(f"Final model: test accuracy {fin['accuracy'].mean():.4f}, mean class accuracy "
                      f"{fin['mean_class_accuracy'].mean():.4f}. {final_protocol_note(fin).replace('**', '')}")
    print(f"RESULT profile={profile} selection={selection} seeds={','.join(map(str, exp.seeds))} "
          f"tables={','.join(map(str, tables))} seconds={time.perf_counter() - t0:.0f}")
    return 0


# ---------------------------------------------------------------------------------------------
# fer report


def report_study(*, profile: str = "demo", results_dir=None, dest=None, show_code: bool = False) -> dict:
    """Check, then export the report of ``profile`` from ``results_dir`` (default the project's
    results/; e.g. a published folder of small files) into ``dest`` (default results/)."""
    from fer_utils.study.tables import load_results, tables_dir
    from fer_utils.study.notebooks import export_report
    from fer_utils.study.report import missing_tables_message

    get_profile(profile)
    if results_dir is not None:
        root = Path(results_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"--published {results_dir}: no such folder; expected a results folder holding runs/ and tables/<profile>/")
        if not tables_dir(profile, root).is_dir():
            have = sorted(p.name for p in (root / "tables").iterdir() if p.is_dir()) if (root / "tables").is_dir() else []
            raise DataError(f"--published {results_dir}: no tables for profile {profile!r} (expected {tables_dir(profile, root)}); "
                            + (f"it has profile(s) {', '.join(have)}: pass --profile {have[0]}" if have else "is it a results folder?"))
        results_dir = root.resolve()
        if (results_dir / "published.json").exists():  # a published folder: its files are checked before they are read
            from fer_utils.study.artifact import verify
            from fer_utils.study.published import read_index

            verify(results_dir, read_index(results_dir))
    dest = Path(dest).expanduser().resolve() if dest is not None else paths.RESULTS_DIR
    check_writable(dest)
    if not load_results(profile, results_dir):
        raise FerError(missing_tables_message({}, profile))
    return export_report(profile=profile, results_dir=results_dir, dest=dest, show_code=show_code)
