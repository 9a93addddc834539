"""The four one-factor sweeps (Tables 1-4), the chain between them, and ``fer run``.

A table is a list of rows; a row is (grid value, RunConfig, epochs). Rows that share a
configuration share a run: Table 1's lr=0.001 row is the first 50 epochs of Table 2's
1000-epoch run, and Table 3's depth-4 row is Table 4's batch-64 configuration. The run store
trains each configuration once, to the largest epoch count any row asks of it.

Each experiment notebook calls :func:`setup` then :func:`run_table`; the table's manifest
(``results/tables/<profile>/table<N>.json``: which runs and epochs made each row) is what the
report notebook reads, with the run store, to assemble Tables 1-4 without training anything.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths
from .atomic import atomic_write_json
from .config import (
    METRIC_COLUMNS,
    REPORT_CHOICES,
    REPORT_PROTOCOL,
    TABLE_CAPTIONS,
    TABLE_FACTOR_LABEL,
    Profile,
    RunConfig,
    get_profile,
)
from .errors import ConfigError, FerError

CHAINS = ("report", "selected")
NOTEBOOKS = ("00_data", "01_learning_rate", "02_epochs", "03_network_depth", "04_batch_size", "05_organize", "06_report")


# ---------------------------------------------------------------------------------------------
# Setting up an experiment: profile + data + protocol


@dataclass
class Experiment:
    profile: Profile
    data: object  # fer_utils.datasets.Dataset
    seeds: tuple[int, ...]
    selection: str
    chain: str
    store: object  # fer_utils.runs.RunStore

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
        from .synthetic import generate

        print(f"Generating the synthetic data set in {target} ...", flush=True)
        generate(target, **profile.synthetic)
    return target


def setup(profile="demo", data="", seeds=None, selection="test", chain="report", overrides=None, verbose=True) -> Experiment:
    """Resolve a profile, load its data (cached) and open the run store. Prints the config."""
    from . import backend, datasets
    from .runs import RunStore

    backend.quiet()
    prof = get_profile(profile, **(overrides or {}))
    if selection not in ("test", "holdout"):
        raise ConfigError(f"selection {selection!r}: expected 'test' (the report's) or 'holdout'")
    if chain not in CHAINS:
        raise ConfigError(f"chain {chain!r}: expected one of {CHAINS}")
    seeds = tuple(int(s) for s in (seeds if seeds not in (None, [], ()) else prof.seeds))
    path = Path(data) if data else default_data(prof)
    ds = datasets.load(path, image_size=prof.image_size, verbose=verbose)
    exp = Experiment(prof, ds, seeds, selection, chain, RunStore())
    if verbose:
        print(exp.describe(), flush=True)
    return exp


# ---------------------------------------------------------------------------------------------
# Rows of a table


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
                    raise FerError(f"chain 'selected': table {t} has no results yet ({manifest_path(exp.profile.name, t)}); run notebook 0{t} first")
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


def plan(exp: Experiment, tables=(1, 2, 3, 4)) -> dict:
    """Which runs need how many epochs, what the store already has, and the total to train."""
    need: dict[str, dict] = {}
    for t in tables:
        for r in table_rows(exp, t):
            n = need.setdefault(r.cfg.run_id, {"run_id": r.cfg.run_id, "config": r.cfg.to_dict(), "epochs": 0, "keep": set(), "tables": set()})
            n["epochs"] = max(n["epochs"], r.epochs)
            n["keep"].add(r.epochs)
            n["tables"].add(t)
    runs = []
    for n in need.values():
        done = exp.store.epochs_done(RunConfig.from_dict(n["config"]))
        runs.append({**n, "keep": sorted(n["keep"]), "tables": sorted(n["tables"]), "done": done, "to_train": max(0, n["epochs"] - done)})
    naive = sum(r.epochs for t in tables for r in table_rows(exp, t))
    return {
        "profile": exp.profile.name,
        "data": exp.data.fingerprint,
        "seeds": list(exp.seeds),
        "selection": exp.selection,
        "chain": exp.chain,
        "runs": runs,
        "n_runs": len(runs),
        "total_epochs": sum(r["epochs"] for r in runs),
        "epochs_to_train": sum(r["to_train"] for r in runs),
        "epochs_without_reuse": naive,
    }


# ---------------------------------------------------------------------------------------------
# Running and reading a table


def manifest_path(profile: str, table: int) -> Path:
    return paths.TABLES_DIR / profile / f"table{table}.json"


def read_manifest(profile: str, table: int) -> dict | None:
    p = manifest_path(profile, table)
    return json.loads(p.read_text()) if p.exists() else None


@dataclass
class TableResult:
    table: int
    manifest: dict
    mean: pd.DataFrame  # index: grid value; the report's columns (+ Test_* with holdout)
    std: pd.DataFrame
    runs: dict = field(default_factory=dict)  # (value, seed) -> Run

    @property
    def caption(self) -> str:
        return TABLE_CAPTIONS[self.table]

    @property
    def picks(self) -> dict:
        return self.manifest["picks"]

    def display_frame(self) -> pd.DataFrame:
        """The table as the report shows it, with mean ± std when there are several seeds."""
        n = len(self.manifest["seeds"])
        out = pd.DataFrame(index=self.mean.index)
        out.index.name = TABLE_FACTOR_LABEL[self.table]
        for c in self.mean.columns:
            if n > 1:
                out[c] = [f"{m:.4f} ± {s:.4f}" for m, s in zip(self.mean[c], self.std[c])]
            else:
                out[c] = [f"{m:.4f}" for m in self.mean[c]]
        marks = []
        for v in self.mean.index:
            m = []
            if _same(v, self.picks.get("report")):
                m.append("report's rule")
            if _same(v, self.picks.get("sound")):
                m.append("held-out rule")
            marks.append(", ".join(m))
        out["Picked by"] = marks
        return out


def _same(a, b) -> bool:
    return b is not None and math.isclose(float(a), float(b))


def _pick(df: pd.DataFrame, rule: str, column_suffix="") -> float:
    if rule == "min |Discrepancy|":
        return float(df["Discrepancy"].abs().idxmin())
    return float(df["Val_accuracy"].idxmax())


def run_table(exp: Experiment, table: int, verbose: bool = True) -> TableResult:
    """Train what the table needs (through the run store), write its manifest, return it."""
    rows = table_rows(exp, table)
    keep: dict[str, set] = {}
    for r in rows:
        keep.setdefault(r.cfg.run_id, set()).add(r.epochs)
    t0 = time.perf_counter()
    for r in rows:
        if max(keep[r.cfg.run_id]) == r.epochs:  # train each configuration once, to its largest count
            exp.store.ensure(r.cfg, r.epochs, exp.data, keep_epochs=sorted(keep[r.cfg.run_id]), verbose=verbose)
    proto = REPORT_PROTOCOL[table]
    manifest = {
        "table": table,
        "caption": TABLE_CAPTIONS[table],
        "factor": proto["factor"],
        "profile": exp.profile.to_dict(),
        "seeds": list(exp.seeds),
        "selection": exp.selection,
        "chain": exp.chain,
        "chain_values": chain_values(exp, table),
        "data": {"fingerprint": exp.data.fingerprint, "source": exp.data.source, "layout": exp.data.layout,
                 "synthetic": exp.data.synthetic, "image_size": exp.data.image_size,
                 "n_train": int(len(exp.data.y_train)), "n_test": int(len(exp.data.y_test))},
        "rows": [{"value": r.value, "seed": r.seed, "epochs": r.epochs, "run_id": r.cfg.run_id} for r in rows],
        "seconds": time.perf_counter() - t0,
    }
    result = load_table(manifest, exp.store)
    manifest["picks"] = {
        "report": _pick(result.mean, REPORT_CHOICES[table]["rule"]),
        "sound": _pick(result.mean, "max Val_accuracy") if exp.selection == "holdout" else None,
    }
    result.manifest = manifest
    atomic_write_json(manifest_path(exp.profile.name, table), manifest)
    return result


def load_table(manifest: dict, store=None) -> TableResult:
    """Assemble a table from its manifest and the run store (trains nothing)."""
    from .runs import RunStore

    store = store or RunStore()
    records, runs = [], {}
    for r in manifest["rows"]:
        run = store.load(r["run_id"])
        runs[(r["value"], r["seed"])] = run
        rec = {"value": r["value"], "seed": r["seed"], **run.row(r["epochs"])}
        ev = run.evaluation(r["epochs"])
        if manifest["selection"] == "holdout" and ev:
            rec["Test_loss"] = ev["test"]["loss"]
            rec["Test_accuracy"] = ev["test"]["accuracy"]
        records.append(rec)
    df = pd.DataFrame(records)
    cols = [c for c in (*METRIC_COLUMNS, "Test_loss", "Test_accuracy") if c in df.columns]
    g = df.groupby("value", sort=False)[cols]
    mean = g.mean()
    std = g.std(ddof=1).fillna(0.0) if len(manifest["seeds"]) > 1 else g.mean() * 0.0
    return TableResult(manifest["table"], manifest, mean, std, runs)


def curves(result: TableResult) -> pd.DataFrame:
    """Per-epoch history of every row (long format: value, seed, epoch, metric columns)."""
    frames = []
    for r in result.manifest["rows"]:
        run = result.runs[(r["value"], r["seed"])]
        h = pd.DataFrame(run.history[: r["epochs"]])
        h["value"], h["seed"] = r["value"], r["seed"]
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


def comparison(result: TableResult) -> pd.DataFrame:
    """Report's published value, reproduced value and difference for every cell."""
    rows = []
    for v in result.mean.index:
        pub = published_row(result.table, v, result.manifest["profile"])
        for i, col in enumerate(METRIC_COLUMNS):
            rep = pub[i] if pub is not None else np.nan
            ours = float(result.mean.loc[v, col])
            rows.append({TABLE_FACTOR_LABEL[result.table]: v, "metric": col, "report": rep, "reproduced": ours, "difference": ours - rep})
    return pd.DataFrame(rows)


def said_vs_got(result: TableResult) -> str:
    """One sentence: what the report chose from this table, and what our numbers pick."""
    choice = REPORT_CHOICES[result.table]
    label = TABLE_FACTOR_LABEL[result.table].lower()

    def fmt(v):
        eq = report_equivalent(result.table, v, result.manifest["profile"])
        return f"{v:g}" if eq is None or _same(eq, v) else f"{v:g} (= {eq:g} at the report's scale)"

    ours = result.picks["report"]
    eq = report_equivalent(result.table, ours, result.manifest["profile"])
    agree = "the same" if eq is not None and _same(eq, choice["value"]) else "a different"
    s = (f"The report picked {label} {choice['value']:g} by {choice['rule']}; applied to our "
         f"numbers the same rule picks {fmt(ours)}: {agree} choice.")
    if result.picks.get("sound") is not None:
        s += f" On the held-out validation split (max Val_accuracy) the pick is {fmt(result.picks['sound'])}."
    return s


def published_row(table: int, value, profile: dict):
    """The report's published (Loss, Accuracy, Val_loss, Val_accuracy, Discrepancy) for the
    row at ``value`` of the profile's grid, or None where the report has no such row."""
    from .config import REPORT_TABLES

    eq = report_equivalent(table, value, profile)
    if eq is None:
        return None
    return next((p for k, p in REPORT_TABLES[table].items() if math.isclose(float(k), eq)), None)


def report_equivalent(table: int, value, profile: dict):
    """The report's grid value at the same position as ``value`` in the profile's grid (only
    Table 2's epochs are scaled; other grids are the report's own values)."""
    grid = {1: "lr_grid", 2: "epochs_grid", 3: "depth_grid", 4: "batch_grid"}[table]
    ours = [float(v) for v in profile[grid]]
    theirs = REPORT_PROTOCOL[table]["grid"]
    for i, v in enumerate(ours):
        if math.isclose(v, float(value)) and i < len(theirs):
            return float(theirs[i])
    return None


def final_value(manifest: dict) -> float:
    """The grid value of the study's final model in this table (Table 4: a batch size).

    With ``chain="report"`` it is what the report chose (batch 2048), where the profile's grid
    has it; with ``chain="selected"`` it is our pick: the held-out rule's with ``holdout``, else
    the report's rule applied to our numbers.
    """
    table, picks = manifest["table"], manifest["picks"]
    if manifest.get("chain", "report") == "report":
        chosen = REPORT_CHOICES[table]["value"]
        for r in manifest["rows"]:
            eq = report_equivalent(table, r["value"], manifest["profile"])
            if eq is not None and math.isclose(eq, float(chosen)):
                return float(r["value"])
    return float(picks["sound"] if picks.get("sound") is not None else picks["report"])


def default_model_path(profile: str = "demo") -> Path:
    """The study's final model from the run store (Table 4's :func:`final_value` row)."""
    from .runs import RunStore

    man = read_manifest(profile, 4) or read_manifest(profile, 3)
    if man is None:
        raise FerError(f"no trained model: {manifest_path(profile, 4)} is missing. Run the experiments first (make report) or pass --model FILE.keras")
    value = final_value(man)
    row = next(r for r in man["rows"] if math.isclose(float(r["value"]), float(value)))
    return RunStore().load(row["run_id"]).model_path(row["epochs"])


# ---------------------------------------------------------------------------------------------
# fer run: execute the notebooks with papermill


def run_cli(args) -> int:
    exp_kwargs = dict(profile=args.profile, data=args.data or "", seeds=list(args.seeds) if args.seeds else None,
                      selection=args.selection, chain=args.chain)
    if args.plan:
        exp = setup(**exp_kwargs, verbose=not args.json)
        p = plan(exp)
        if args.json:
            print(json.dumps(p, indent=2))
        else:
            print(f"{p['n_runs']} runs, {p['total_epochs']} epochs in all ({p['epochs_without_reuse']} without reuse), "
                  f"{p['epochs_to_train']} still to train:")
            for r in p["runs"]:
                print(f"  {r['run_id']}: tables {r['tables']}, {r['epochs']} epochs (have {r['done']}, train {r['to_train']})")
        return 0
    names = args.notebooks.split(",") if args.notebooks else None
    return execute_notebooks(names=names, **exp_kwargs)


def faces_for(data: str) -> str | None:
    """Unlabelled faces for the sorting step: the synthetic set's own, else the UTKFace sample
    beside the project (../shared/data), else None (the step is skipped, and says so)."""
    own = Path(data) / "unlabelled"
    if own.is_dir():
        return str(own)
    utk = paths.SHARED_DATA / "utkface-sample.zip"
    return str(utk) if utk.exists() else None


def execute_notebooks(names=None, profile="demo", data="", seeds=None, selection="test", chain="report") -> int:
    """Run the notebooks in order through papermill into results/executed/, then export the
    report. A failing notebook stops the chain (its executed copy, with papermill's error
    banner, is kept) and the exit status is 1."""
    import papermill as pm

    if not data:  # make the synthetic set once, here, rather than inside a notebook
        data = str(default_data(get_profile(profile)))
    else:
        data = str(Path(data).expanduser().resolve())
    available = [n for n in NOTEBOOKS if (paths.NOTEBOOKS_DIR / f"{n}.ipynb").exists()]
    unknown = set(names or ()) - set(available)
    if unknown:
        raise FerError(f"unknown notebook(s) {sorted(unknown)}; available: {available}")
    todo = [n for n in available if names is None or n in names]
    out_dir = paths.EXECUTED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "data": data, "seeds": list(seeds) if seeds else [], "selection": selection, "chain": chain}
    t_all = time.perf_counter()
    for name in todo:
        p = dict(params)
        if name == "05_organize":
            faces = faces_for(data)
            if faces is None:
                print(f"== {name}: skipped (no unlabelled faces: neither {data}/unlabelled nor {paths.SHARED_DATA}/utkface-sample.zip)")
                continue
            p.update(faces=faces, model_path=str(default_model_path(profile)), output=str(paths.RESULTS_DIR / "organized"))
        if name == "06_report":
            from .report import export_report

            print("== 06_report: assembling the report (trains nothing)", flush=True)
            export_report(profile=profile)
            continue
        src = paths.NOTEBOOKS_DIR / f"{name}.ipynb"
        dest = out_dir / f"{name}.ipynb"
        accepted = _notebook_parameters(src)
        p = {k: v for k, v in p.items() if k in accepted}
        print(f"== {name}: {p}", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(src), str(dest), parameters=p, cwd=str(paths.NOTEBOOKS_DIR),
                                kernel_name="python3", progress_bar=False, stdout_file=sys.stdout)
        except pm.PapermillExecutionError as exc:
            print(f"fer run: {name} failed at cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                  f"  the executed notebook, with the error, is kept at {dest}", file=sys.stderr)
            return 1
        print(f"== {name}: done in {time.perf_counter() - t0:.0f}s -> {dest}", flush=True)
    print(f"Ran {len(todo)} notebooks in {time.perf_counter() - t_all:.0f}s; executed copies in {out_dir}")
    return 0


def _notebook_parameters(path: Path) -> set:
    """Names assigned in the notebook's `parameters` cell (papermill injects only those)."""
    import ast

    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    return set()
