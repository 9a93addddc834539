"""Reading Tables 1-4 back: the table manifests (``results/tables/<profile>/table<N>.json``:
which runs and epochs made each row, and the picks) and the run store, assembled into
:class:`TableResult` (mean, std and per seed). Trains nothing; :func:`fer_utils.study.experiments.run_table`
writes the manifests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fer_utils import paths
from fer_utils.errors import RunStoreError
from fer_utils.study.profiles import PROFILES, get_profile
from fer_utils.study.protocol import METRIC_COLUMNS, REPORT_CHOICES, REPORT_TABLES, TABLE_CAPTIONS, report_equivalent

#: The notebook that runs each table.
TABLE_NOTEBOOKS = {1: "01_learning_rate", 2: "02_epochs", 3: "03_network_depth", 4: "04_batch_size"}
TABLES = (1, 2, 3, 4)


def tables_dir(profile: str, results_dir=None) -> Path:
    return (Path(results_dir) / "tables" if results_dir is not None else paths.TABLES_DIR) / profile


def manifest_path(profile: str, table: int, results_dir=None) -> Path:
    return tables_dir(profile, results_dir) / f"table{table}.json"


def read_manifest(profile: str, table: int, results_dir=None) -> dict | None:
    from fer_utils.jsonfile import read_json

    return read_json(manifest_path(profile, table, results_dir), {"table": int, "rows": list, "picks": dict, "seeds": list},
                     what="a table manifest (the keys table, rows, picks, seeds)", error=RunStoreError, missing=None,
                     fix=f"run the table's notebook again ({TABLE_NOTEBOOKS.get(table, 'fer run')}) to rewrite it")


@dataclass
class TableResult:
    table: int
    manifest: dict
    mean: pd.DataFrame  # index: grid value; the report's columns (+ Test_* with holdout)
    std: pd.DataFrame
    runs: dict = field(default_factory=dict)  # (value, seed) -> Run
    final_runs: dict = field(default_factory=dict)  # seed -> Run of the final model (Table 4)
    per_seed: pd.DataFrame | None = None  # one row per (value, seed): the columns of mean, unaveraged

    @property
    def caption(self) -> str:
        return TABLE_CAPTIONS[self.table]

    @property
    def picks(self) -> dict:
        return self.manifest["picks"]

    @property
    def n_seeds(self) -> int:
        return len(self.manifest.get("seeds", [0]))


def load_table(manifest: dict, store=None) -> TableResult:
    """Assemble a table from its manifest and the run store (trains nothing)."""
    from fer_utils.training.store import RunStore

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
    final_runs = {r["seed"]: store.load(r["run_id"]) for r in manifest.get("final", {}).get("rows", [])}
    return TableResult(manifest["table"], manifest, mean, std, runs, final_runs, df[["value", "seed", *cols]])


def load_results(profile: str = "demo", results_dir=None) -> dict:
    """``{table: TableResult}`` for every table whose manifest exists under ``results_dir``
    (default the project's results/: ``tables/<profile>/`` and the run store ``runs/``)."""
    from fer_utils.training.store import RunStore

    get_profile(profile)  # an unknown profile is an error naming the known ones
    store = RunStore(Path(results_dir) / "runs") if results_dir is not None else RunStore()
    out = {}
    for t in TABLES:
        man = read_manifest(profile, t, results_dir)
        if man is not None:
            out[t] = load_table(man, store)
    return out


def curves(result: TableResult) -> pd.DataFrame:
    """Per-epoch history of every row (long format: value, seed, epoch, metric columns)."""
    frames = []
    for r in result.manifest["rows"]:
        run = result.runs[(r["value"], r["seed"])]
        h = pd.DataFrame(run.history[: r["epochs"]])
        h["value"], h["seed"] = r["value"], r["seed"]
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# The report's own numbers, at the report's scale


def published_result(table: int) -> TableResult:
    """The report's own Table ``table`` as a TableResult (one seed, the ``full`` profile)."""
    pub = REPORT_TABLES[table]
    idx = pd.Index([float(v) for v in pub], name="value")
    mean = pd.DataFrame([list(v) for v in pub.values()], index=idx, columns=list(METRIC_COLUMNS))
    manifest = {"table": table, "seeds": [0], "profile": PROFILES["full"].to_dict(), "selection": "test",
                "picks": {"report": float(REPORT_CHOICES[table]["value"]), "sound": None}}
    return TableResult(table, manifest, mean, mean * 0.0, {})


def at_report_scale(result: TableResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean, std) re-indexed by the REPORT's grid value (Table 2's epochs are scaled in the
    demo and smoke profiles; the other grids are the report's own values). Rows with no
    equivalent are dropped."""
    prof = result.manifest["profile"]
    keep, idx = [], []
    for v in result.mean.index:
        eq = report_equivalent(result.table, v, prof)
        if eq is not None:
            keep.append(v)
            idx.append(eq)
    mean = result.mean.loc[keep].copy()
    std = result.std.loc[keep].copy()
    mean.index = std.index = pd.Index(idx, name="value")
    return mean, std
