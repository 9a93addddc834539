"""The report: Tables 1-4 beside the course report's, Figure 12, the final model, the claims
the report draws checked against the results, provenance; exported to HTML and PDF.

The report notebook (``notebooks/06_report.ipynb``) reads only the table manifests and the run
store (it trains nothing) and calls the functions here. :func:`export_report` executes it with
papermill, converts it to one self-contained HTML file (images inline, no code, no stderr) and
prints that to PDF with a headless Chromium when one is installed.

The claims are pure functions of table results: each is evaluated twice, on our numbers and on
the report's own published numbers (:func:`published_result`), so a reader sees both where our
reproduction disagrees with the report and where the report disagrees with itself.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths
from .atomic import atomic_write_text, temp_path_for
from .config import (
    METRIC_COLUMNS,
    PROFILES,
    REPORT_CHOICES,
    REPORT_TABLES,
    TABLE_FACTOR_LABEL,
)
from .errors import FerError

SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE = "supported", "not supported", "not testable here"
REPORT_NAME = "06_report"


# ---------------------------------------------------------------------------------------------
# Loading what the experiment notebooks left behind


def load_results(profile: str = "demo") -> dict:
    """``{table: TableResult}`` for every table whose manifest exists (missing ones are absent)."""
    from .experiments import load_table, read_manifest

    out = {}
    for t in (1, 2, 3, 4):
        man = read_manifest(profile, t)
        if man is not None:
            out[t] = load_table(man)
    return out


def missing_tables_message(results: dict, profile: str) -> str | None:
    missing = [t for t in (1, 2, 3, 4) if t not in results]
    if not missing:
        return None
    names = {1: "01_learning_rate", 2: "02_epochs", 3: "03_network_depth", 4: "04_batch_size"}
    nbs = ",".join(names[t] for t in missing)
    return (f"Table(s) {', '.join(map(str, missing))} have no results for profile {profile!r} yet: "
            f"run `fer run --profile {profile} --notebooks {nbs}` (or `make report`), then this notebook again.")


def published_result(table: int):
    """The report's own Table ``table`` as a TableResult (one seed, the ``full`` profile)."""
    from .experiments import TableResult

    pub = REPORT_TABLES[table]
    idx = pd.Index([float(v) for v in pub], name="value")
    mean = pd.DataFrame([list(v) for v in pub.values()], index=idx, columns=list(METRIC_COLUMNS))
    manifest = {"table": table, "seeds": [0], "profile": PROFILES["full"].to_dict(), "selection": "test",
                "picks": {"report": float(REPORT_CHOICES[table]["value"]), "sound": None}}
    return TableResult(table, manifest, mean, mean * 0.0, {})


def _n_seeds(result) -> int:
    return len(result.manifest.get("seeds", [0]))


def at_report_scale(result) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean, std) re-indexed by the REPORT's grid value (Table 2's epochs are scaled in the
    demo and smoke profiles; the other grids are the report's own values). Rows with no
    equivalent are dropped."""
    from .experiments import report_equivalent

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


# ---------------------------------------------------------------------------------------------
# Tables 1-4 beside the report's


def _fmt(x, digits=4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _fmt_signed(x, digits=4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.{digits}f}"


def _value_label(table: int, v, eq) -> str:
    s = f"{float(v):g}"
    if eq is not None and not math.isclose(float(eq), float(v)):
        s += f" (= {float(eq):g})"
    return s


def picks_column(result) -> list[str]:
    """Per row: who chose it. The report's own choice, the report's rule on our numbers, and
    (with holdout) the sound rule on our numbers."""
    from .experiments import _same, report_equivalent

    marks = []
    for v in result.mean.index:
        m = []
        eq = report_equivalent(result.table, v, result.manifest["profile"])
        if eq is not None and _same(eq, REPORT_CHOICES[result.table]["value"]):
            m.append("the report")
        if _same(v, result.picks.get("report")):
            m.append("ours, report's rule")
        if _same(v, result.picks.get("sound")):
            m.append("ours, held-out rule")
        marks.append("; ".join(m))
    return marks


ROW_KINDS = ("report", "ours", "diff")


def comparison_table(result) -> pd.DataFrame:
    """The table in the report's format (one column per metric), three rows per grid value:
    the report's published value, ours (``mean ± std`` with several seeds) and the difference
    (ours - report). Column 'Chosen by' marks the report's choice (on its row) and our picks
    (on ours). Index: (grid value, with its report equivalent in brackets where scaled; kind)."""
    from .experiments import _same, published_row, report_equivalent

    n = _n_seeds(result)
    records, index = [], []
    for v in result.mean.index:
        eq = report_equivalent(result.table, v, result.manifest["profile"])
        published = published_row(result.table, v, result.manifest["profile"])
        label = _value_label(result.table, v, eq)
        rep, ours, diff = {}, {}, {}
        for i, c in enumerate(METRIC_COLUMNS):
            r = published[i] if published is not None else float("nan")
            o = float(result.mean.loc[v, c])
            rep[c] = _fmt(r)
            ours[c] = f"{o:.4f} ± {float(result.std.loc[v, c]):.4f}" if n > 1 else f"{o:.4f}"
            diff[c] = _fmt_signed(o - r)
        chose_report = eq is not None and _same(eq, REPORT_CHOICES[result.table]["value"])
        rep["Chosen by"] = "the report" if chose_report else ""
        ours["Chosen by"] = "; ".join(m for m, ok in (("report's rule", _same(v, result.picks.get("report"))),
                                                       ("held-out rule", _same(v, result.picks.get("sound")))) if ok)
        diff["Chosen by"] = ""
        for kind, rec in zip(ROW_KINDS, (rep, ours, diff)):
            records.append(rec)
            index.append((label, kind))
    idx = pd.MultiIndex.from_tuples(index, names=[TABLE_FACTOR_LABEL[result.table], ""])
    return pd.DataFrame(records, index=idx, columns=[*METRIC_COLUMNS, "Chosen by"])


def styled_comparison(result):
    """:func:`comparison_table` styled: the report's rows grey, ours bold, differences small;
    the report's chosen row shaded blue, the row our rule picks shaded yellow."""
    df = comparison_table(result)
    st = df.style.set_table_styles(_TABLE_CSS + [
        {"selector": "tbody tr:nth-child(3n) td, tbody tr:nth-child(3n) th", "props": "border-bottom: 1px solid #ccc;"},
        {"selector": "th.level1", "props": "font-weight: normal; color: #666; font-size: 0.9em;"},
    ]).set_caption(result.caption)

    def row_style(row):
        kind = row.name[1]
        base = {"report": "color: #666;", "ours": "font-weight: 600;", "diff": "color: #555; font-size: 0.9em;"}[kind]
        chosen = row["Chosen by"]
        shade = ""
        if chosen and kind == "report":
            shade = "background-color: #e3ecfa;"
        elif chosen and kind == "ours":
            shade = "background-color: #fff0b3;"
        return [base + shade for _ in row]

    st = st.apply(row_style, axis=1)
    st = st.set_table_styles({"Chosen by": [{"selector": "td", "props": "text-align: left; font-weight: normal !important; font-style: italic;"}]},
                             overwrite=False)
    return st


def test_columns_table(result) -> pd.DataFrame | None:
    """With holdout selection: the test loss/accuracy of each row (the report has none)."""
    if "Test_accuracy" not in result.mean.columns:
        return None
    n = _n_seeds(result)
    out = pd.DataFrame(index=pd.Index([f"{float(v):g}" for v in result.mean.index], name=TABLE_FACTOR_LABEL[result.table]))
    for c in ("Val_accuracy", "Test_loss", "Test_accuracy"):
        m, s = result.mean[c].to_numpy(), result.std[c].to_numpy()
        out[c] = [f"{a:.4f} ± {b:.4f}" if n > 1 else f"{a:.4f}" for a, b in zip(m, s)]
    out["Chosen by"] = picks_column(result)
    return out


_TABLE_CSS = [
    {"selector": "caption", "props": "caption-side: top; font-weight: 600; font-size: 1.05em; text-align: left; white-space: nowrap; padding: 0 0 .4em 0; color: #222;"},
    {"selector": "th, td", "props": "padding: 3px 6px; text-align: right; white-space: nowrap; border: none;"},
    {"selector": "thead th", "props": "border-bottom: 1px solid #999; text-align: center;"},
    {"selector": "th.row_heading, th.index_name", "props": "text-align: left;"},
    {"selector": "", "props": "border-collapse: collapse; font-size: 0.82em; margin: .3em 0 1em 0;"},
]


def styled(df: pd.DataFrame, caption: str | None = None, wrap: bool = False, precision: int = 4, left=(), header=True):
    """A Styler that reads well in the HTML and the PDF: caption on top, compact, print-friendly.
    ``wrap``: let text cells wrap and align left (key/value tables); ``left``: columns to align
    left; ``header=False`` hides the column header (key/value tables)."""
    st = df.style.set_table_styles(_TABLE_CSS).format(precision=precision)
    if not header:
        st = st.hide(axis="columns")
    if caption:
        st = st.set_caption(caption)
    if wrap:
        st = st.set_table_styles([{"selector": "td", "props": "white-space: normal; text-align: left;"}], overwrite=False)
    if "Chosen by" in df.columns:
        st = st.apply(lambda row: ["background-color: #fff0b3" if row["Chosen by"] else "" for _ in row], axis=1)
        left = (*left, "Chosen by")
    return _align_left(st, left)


def _align_left(st, columns):
    # column-keyed table styles outrank the table-wide "td" rule (set_properties would not)
    if columns:
        st = st.set_table_styles({c: [{"selector": "td", "props": "text-align: left;"}] for c in columns}, overwrite=False)
    return st


# ---------------------------------------------------------------------------------------------
# The claims the report draws from its tables


@dataclass(frozen=True)
class Claim:
    claim: str  # what the report says, in a sentence
    where: str  # where it says it
    evidence: str  # our numbers behind the verdict
    verdict: str  # on our numbers: supported / not supported / not testable here
    report_evidence: str
    report_verdict: str  # on the report's own published numbers


def _v(ok) -> str:
    return NOT_TESTABLE if ok is None else (SUPPORTED if ok else NOT_SUPPORTED)


def _listing(mean: pd.DataFrame, std: pd.DataFrame, col: str, name: str, n: int) -> str:
    parts = []
    for v in mean.index:
        s = f"{name} {v:g}: {mean.loc[v, col]:.4f}"
        if n > 1:
            s += f" ± {std.loc[v, col]:.4f}"
        parts.append(s)
    return "; ".join(parts)


def _has(mean, *values) -> bool:
    return all(any(math.isclose(float(i), float(v)) for i in mean.index) for v in values)


def _loc(mean, v):
    return next(i for i in mean.index if math.isclose(float(i), float(v)))


def _is_best(mean, std, n, col, value, name, best="max", need=2):
    """Is ``value`` the one row with the best ``col``? (verdict or None, evidence). A tie for
    the best is not "the best": the verdict is then not supported."""
    if len(mean) < need or not _has(mean, value):
        have = ", ".join(f"{v:g}" for v in mean.index) or "none"
        return None, f"needs {name} {value:g} and another {name} (this grid has {have})"
    # The discrepancy is a gap between two accuracies: "smallest" means smallest in size.
    vals = mean[col].abs() if col == "Discrepancy" else mean[col]
    col_v = vals if best == "max" else -vals
    top = col_v.max()
    winners = [v for v in mean.index if math.isclose(col_v[v], top, abs_tol=1e-9)]
    word = ("Highest" if best == "max" else "Lowest") + (" |Discrepancy|" if col == "Discrepancy" else "")
    ev = f"{col}: {_listing(mean, std, col, name, n)}. {word}: " + (
        f"{name} {winners[0]:g}." if len(winners) == 1 else f"a tie between {name} {', '.join(f'{w:g}' for w in winners)}.")
    if n > 1 and len(mean) > 1:
        ranked = col_v.sort_values(ascending=False)
        a, b = ranked.index[0], ranked.index[1]
        if ranked.iloc[0] - ranked.iloc[1] < max(std.loc[a, col], std.loc[b, col]):
            ev += f" The margin over the runner-up ({name} {b:g}) is within one standard deviation across seeds."
    return len(winners) == 1 and math.isclose(float(winners[0]), float(value)), ev


def _unique(series: pd.Series, best="min"):
    """The index of the one best entry, or None on a tie."""
    v = series if best == "max" else -series
    winners = [i for i in v.index if math.isclose(v[i], v.max(), abs_tol=1e-9)]
    return winners[0] if len(winners) == 1 else None


def _name(v, name) -> str:
    return "a tie" if v is None else f"{name} {v:g}"


def _check_table(results, table, fn):
    """Run ``fn(mean, std, n)`` on our Table ``table`` (at the report's scale) and on the report's."""
    res = results.get(table)
    if res is None:
        ours = (None, f"Table {table} has not been run for this profile")
    else:
        mean, std = at_report_scale(res)
        ours = fn(mean, std, _n_seeds(res))
    pub = published_result(table)
    theirs = fn(pub.mean, pub.std, 1)
    return ours, theirs


def _claim(text, where, results, table, fn) -> Claim:
    (ok, ev), (rok, rev) = _check_table(results, table, fn)
    return Claim(text, where, ev, _v(ok), rev, _v(rok))


def claim_lr_best_val(results) -> Claim:
    return _claim("A learning rate of 0.001 gives the best validation accuracy.", "Table 1 text, Conclusion", results, 1,
                  lambda m, s, n: _is_best(m, s, n, "Val_accuracy", 0.001, "lr"))


def claim_lr_best_train(results) -> Claim:
    return _claim("A learning rate of 0.001 also gives the highest training accuracy.", "Table 1 text", results, 1,
                  lambda m, s, n: _is_best(m, s, n, "Accuracy", 0.001, "lr"))


def claim_lr_min_discrepancy(results) -> Claim:
    return _claim("The discrepancy is minimal for the chosen learning rate (0.001).", "Table 1 text", results, 1,
                  lambda m, s, n: _is_best(m, s, n, "Discrepancy", 0.001, "lr", best="min"))


def claim_lr_too_large(results) -> Claim:
    def fn(m, s, n):
        if len(m) < 2 or not _has(m, 0.01):
            return None, "needs lr 0.01 and another learning rate"
        lo_t, lo_v = _unique(m["Accuracy"]), _unique(m["Val_accuracy"])
        ok = lo_t is not None and lo_v is not None and math.isclose(lo_t, 0.01) and math.isclose(lo_v, 0.01)
        return ok, (f"Accuracy: {_listing(m, s, 'Accuracy', 'lr', n)}. Val_accuracy: {_listing(m, s, 'Val_accuracy', 'lr', n)}. "
                    f"Lowest: {_name(lo_t, 'lr')} (train), {_name(lo_v, 'lr')} (validation).")
    return _claim("A learning rate of 0.01 is too large: the lowest training and validation accuracy.", "Table 1 text", results, 1, fn)


def claim_epochs_best(results) -> Claim:
    return _claim("100 epochs gives the best validation accuracy (epoch counts at the report's scale).",
                  "Table 2 text, Conclusion", results, 2,
                  lambda m, s, n: _is_best(m, s, n, "Val_accuracy", 100, "epochs"))


def claim_epochs_train_improves(results) -> Claim:
    def fn(m, s, n):
        if len(m) < 2:
            return None, "needs two or more epoch counts"
        first = m.index.min()
        longer = [v for v in m.index if v > first]
        ok = all(m.loc[v, "Accuracy"] > m.loc[first, "Accuracy"] for v in longer)
        return ok, (f"Accuracy: {_listing(m, s, 'Accuracy', 'epochs', n)}. Rule: every longer run has a higher "
                    f"training accuracy than {first:g} epochs.")
    return _claim("Higher epoch counts improve accuracy on the training set.", "Table 2 text", results, 2, fn)


def claim_epochs_overfit(results) -> Claim:
    def fn(m, s, n):
        if len(m) < 2:
            return None, "needs two or more epoch counts"
        first = m.index.min()
        lo = _unique(m["Discrepancy"].abs())
        ok = lo is not None and math.isclose(float(lo), float(first))
        return ok, f"Discrepancy: {_listing(m, s, 'Discrepancy', 'epochs', n)}. Rule: the shortest run has the smallest |discrepancy|."
    return _claim("Fewer epochs mitigate overfitting (the shortest training has the smallest discrepancy).",
                  "Table 2 text", results, 2, fn)


def claim_depth_best(results) -> Claim:
    return _claim("A network depth of 4 gives the best validation accuracy.", "Table 3 text, Conclusion", results, 3,
                  lambda m, s, n: _is_best(m, s, n, "Val_accuracy", 4, "depth"))


def claim_depth_loss_train(results) -> Claim:
    def fn(m, s, n):
        if len(m) < 2 or not _has(m, 4):
            return None, "needs depth 4 and another depth"
        lo, hi = _unique(m["Loss"]), _unique(m["Accuracy"], "max")
        ok = lo is not None and hi is not None and math.isclose(float(lo), 4) and math.isclose(float(hi), 4)
        return ok, (f"Loss: {_listing(m, s, 'Loss', 'depth', n)}. Accuracy: {_listing(m, s, 'Accuracy', 'depth', n)}. "
                    f"Lowest loss: {_name(lo, 'depth')}; highest training accuracy: {_name(hi, 'depth')}.")
    return _claim("A network depth of 4 yields the lowest loss and the highest training accuracy.", "Table 3 text", results, 3, fn)


def claim_depth_degrades(results) -> Claim:
    def fn(m, s, n):
        deeper = [v for v in (5, 6) if _has(m, v)]
        if not _has(m, 4) or not deeper:
            have = ", ".join(f"{v:g}" for v in m.index) or "none"
            return None, f"needs depth 4 and depth 5 or 6 (this grid has {have})"
        base = m.loc[_loc(m, 4), "Val_accuracy"]
        ok = all(m.loc[_loc(m, v), "Val_accuracy"] < base for v in deeper)
        return ok, f"Val_accuracy: {_listing(m, s, 'Val_accuracy', 'depth', n)}. Rule: depth {' and '.join(map(str, deeper))} below depth 4."
    return _claim("Depths 5 and 6 degrade performance (lower validation accuracy than depth 4).", "Table 3 text", results, 3, fn)


def claim_batch_min_discrepancy(results) -> Claim:
    return _claim("A batch size of 2048 has the smallest discrepancy.", "Table 4 text, Conclusion", results, 4,
                  lambda m, s, n: _is_best(m, s, n, "Discrepancy", 2048, "batch", best="min"))


def claim_batch_large_generalise(results) -> Claim:
    def fn(m, s, n):
        small = [v for v in m.index if v <= 256]
        large = [v for v in m.index if v >= 512]
        if not small or not large:
            have = ", ".join(f"{v:g}" for v in m.index) or "none"
            return None, f"needs a small (128, 256) and a large (512..2048) batch size (this grid has {have})"
        gap = m["Discrepancy"].abs()
        ok = max(gap.loc[large]) < min(gap.loc[small])
        return ok, f"Discrepancy: {_listing(m, s, 'Discrepancy', 'batch', n)}. Rule: every large batch below every small one, in size."
    return _claim("Larger batch sizes (512-2048) have lower discrepancy than smaller ones (128, 256).", "Table 4 text", results, 4, fn)


def claim_happy_best(final: dict | None) -> Claim:
    """Per-class accuracy of the final model: is Happiness the best classified class?"""
    rev = "the report publishes no per-class numbers (it judged by browsing the sorted UTKFace folders)"
    if not final or final.get("per_class") is None or final["per_class"].empty:
        return Claim("Happy faces are classified best.", "Sorting UTKFace, Discussion", "no evaluation of the final model",
                     NOT_TESTABLE, rev, NOT_TESTABLE)
    pc = final["per_class"]["mean"].dropna()
    predicted = np.flatnonzero(np.asarray(final["confusion"]).sum(axis=0))
    if len(predicted) <= 1:  # a collapsed model "classifies best" whatever it always says
        only = final["class_names"][predicted[0]] if len(predicted) else "nothing"
        return Claim("Happy faces are classified best.", "Sorting UTKFace, Discussion",
                     f"The final model predicts {only} for every test face (it has collapsed), so no class is "
                     f"classified better than another in any useful sense.", NOT_TESTABLE, rev, NOT_TESTABLE)
    top = _unique(pc, "max")
    ev = ("Per-class test accuracy of the final model: " + "; ".join(f"{c} {a:.3f}" for c, a in pc.sort_values(ascending=False).items())
          + f". Best: {top if top is not None else 'a tie'}.")
    return Claim("Happy faces are classified best.", "Sorting UTKFace, Discussion", ev, _v(top == "Happiness"), rev, NOT_TESTABLE)


TABLE_CLAIMS = (
    claim_lr_best_val, claim_lr_best_train, claim_lr_min_discrepancy, claim_lr_too_large,
    claim_epochs_best, claim_epochs_train_improves, claim_epochs_overfit,
    claim_depth_best, claim_depth_loss_train, claim_depth_degrades,
    claim_batch_min_discrepancy, claim_batch_large_generalise,
)


def claims(results: dict, final: dict | None = None) -> list[Claim]:
    """Every claim the report draws from its tables, with verdicts computed from ``results``
    (``{table: TableResult}``, missing tables allowed) and from the report's own numbers."""
    return [f(results) for f in TABLE_CLAIMS] + [claim_happy_best(final)]


_VERDICT_COLOUR = {SUPPORTED: "#d8f0d8", NOT_SUPPORTED: "#f8d7d3", NOT_TESTABLE: "#eeeeee"}


def claims_html(items: list[Claim]) -> str:
    """The claims as an HTML table that fits a portrait page: claim, where and the evidence
    (ours, then the report's) in one wide column; the two verdicts in narrow coloured ones."""
    from html import escape

    def verdict(v):
        return f'<td class="fer-verdict" style="background:{_VERDICT_COLOUR.get(v, "")}">{escape(v)}</td>'

    rows = []
    for i, c in enumerate(items, 1):
        rows.append(
            f'<tr><td class="fer-num">{i}</td><td class="fer-claim"><div class="fer-claim-text">{escape(c.claim)}'
            f' <span class="fer-where">({escape(c.where)})</span></div>'
            f'<div class="fer-evidence"><b>Ours:</b> {escape(c.evidence)}</div>'
            f'<div class="fer-evidence"><b>Report:</b> {escape(c.report_evidence)}</div></td>'
            f"{verdict(c.verdict)}{verdict(c.report_verdict)}</tr>")
    return (
        "<style>"
        "table.fer-claims{border-collapse:collapse;width:100%;margin:.3em 0 1em 0;font-size:.85em}"
        "table.fer-claims th{border-bottom:1px solid #999;text-align:left!important;padding:4px 6px;font-weight:600;vertical-align:bottom}"
        "table.fer-claims td{border-bottom:1px solid #ddd;padding:5px 6px;vertical-align:top;text-align:left!important}"
        "table.fer-claims tr{break-inside:avoid;page-break-inside:avoid}"
        "td.fer-num{color:#666;width:1.5em}"
        "td.fer-verdict{font-weight:600;width:8em;text-align:center!important}"
        ".fer-claim-text{font-weight:600;margin-bottom:2px}"
        ".fer-where{font-weight:normal;color:#777;font-size:.9em}"
        ".fer-evidence{font-size:.88em;color:#444;margin-top:1px}"
        "</style>"
        '<table class="fer-claims"><thead><tr><th>#</th><th>Claim (the report) and the numbers behind each verdict</th>'
        "<th>Verdict (ours)</th><th>Verdict (report's numbers)</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>")


def claims_summary(items: list[Claim]) -> str:
    ours = pd.Series([c.verdict for c in items]).value_counts()
    theirs = pd.Series([c.report_verdict for c in items]).value_counts()
    f = lambda s: ", ".join(f"{s.get(k, 0)} {k}" for k in (SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE))
    return f"On our results: {f(ours)}. On the report's own numbers: {f(theirs)}."


# ---------------------------------------------------------------------------------------------
# The final model: Table 4's row the study ends with (experiments.final_value), at its epochs


def final_model(results: dict) -> dict | None:
    """The study's final model on our results: Table 4's :func:`~fer_utils.experiments.final_value`
    row (the report's batch 2048 under ``chain="report"``, our pick under ``"selected"``), at its epochs; its test evaluation per seed, the confusion matrix
    summed over seeds and per-class accuracy (mean, std over seeds). None without Table 4."""
    res = results.get(4)
    if res is None:
        return None
    from .experiments import _same, final_value

    value = final_value(res.manifest)
    rows = [r for r in res.manifest["rows"] if _same(r["value"], value)]
    evals, run_ids = [], []
    for r in rows:
        run = res.runs[(r["value"], r["seed"])]
        ev = run.evaluation(r["epochs"])
        if ev:
            evals.append(ev["test"])
            run_ids.append(run.id)
    if not evals:
        return {"value": value, "epochs": rows[0]["epochs"] if rows else None, "evaluations": [], "per_class": None}
    names = evals[0]["class_names"]
    cm = np.sum([np.asarray(e["confusion"]) for e in evals], axis=0)
    pcs = pd.DataFrame([e["per_class_accuracy"] for e in evals], columns=names)
    counts = cm.sum(axis=1)
    per_class = pd.DataFrame({"test images": counts, "mean": pcs.mean(), "std": pcs.std(ddof=1) if len(evals) > 1 else pcs.mean() * 0},
                             index=pd.Index(names, name="class"))
    acc = np.array([e["accuracy"] for e in evals])
    mca = np.array([e["mean_class_accuracy"] for e in evals])
    cfg = res.runs[(rows[0]["value"], rows[0]["seed"])].config
    return {"value": value, "epochs": rows[0]["epochs"], "run_ids": run_ids, "config": cfg, "evaluations": evals,
            "class_names": names, "confusion": cm, "per_class": per_class, "accuracy": acc, "mean_class_accuracy": mca,
            "n_test": int(evals[0]["n"])}


def per_class_frame(final: dict, train_counts: dict | None = None) -> pd.DataFrame:
    pc = final["per_class"]
    n = len(final["evaluations"])
    out = pd.DataFrame(index=pc.index)
    if train_counts:
        total = sum(train_counts.values())
        out["share of train"] = [f"{100 * train_counts.get(c, 0) / total:.1f}%" for c in pc.index]
    out["test images"] = pc["test images"].astype(int)
    out["share of test"] = [f"{100 * c / max(pc['test images'].sum(), 1):.1f}%" for c in pc["test images"]]
    out["accuracy"] = [f"{m:.3f} ± {s:.3f}" if n > 1 else f"{m:.3f}" for m, s in zip(pc["mean"], pc["std"])]
    return out


def mean_std(a, digits=4) -> str:
    a = np.asarray(a, dtype=float)
    return f"{a.mean():.{digits}f} ± {a.std(ddof=1):.{digits}f}" if len(a) > 1 else f"{a.mean():.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Provenance


def _version(mod: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(mod)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit(folder=None) -> str:
    folder = Path(folder) if folder is not None else paths.PROJECT_DIR
    try:
        sha = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown (not a git checkout, or no commit yet)"
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git is not installed)"


def provenance(results: dict) -> dict:
    """Profile, data, seeds, selection, versions, machine, git commit, as ``{label: text}``."""
    from . import backend

    backend.quiet()
    man = next(iter(results.values())).manifest if results else {}
    data = man.get("data", {})
    prof = man.get("profile", {})
    try:
        import keras

        kb = keras.backend.backend()
    except Exception:  # pragma: no cover - keras is a dependency
        kb = "unknown"
    versions = {"python": platform.python_version(), "keras": _version("keras"), "backend": kb,
                "numpy": _version("numpy"), "pandas": _version("pandas")}
    for extra in ("tensorflow", "jax"):
        v = _version(extra)
        if v != "not installed":
            versions[extra] = v
    versions["fer-utils"] = _version("fer-utils")
    return {
        "Profile": f"{prof.get('name', '?')}: {prof.get('description', '')}",
        "Epoch scale": prof.get("epoch_scale", "?"),
        "Data set": ("SYNTHETIC stand-in, " if data.get("synthetic") else "") + f"{data.get('source', '?')}",
        "Layout": str(data.get("layout", "?")),
        "Fingerprint": str(data.get("fingerprint", "?")),
        "Images": f"{data.get('n_train', '?')} train, {data.get('n_test', '?')} test, {data.get('image_size', '?')}x{data.get('image_size', '?')} px",
        "Seeds": ", ".join(map(str, man.get("seeds", []))),
        "Selection": {"test": "test: validate and select on the TEST split (the report's protocol)",
                      "holdout": "holdout: validate and select on a held-out 10% of train; test touched once per run"}.get(man.get("selection"), str(man.get("selection"))),
        "Chain": str(man.get("chain", "?")),
        "Versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "Machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "Git commit": git_commit(),
        "Report made": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def run_times(results: dict) -> pd.DataFrame:
    """Every run behind the tables: its tables, epochs trained, wall time (sum of its epochs)."""
    seen: dict[str, dict] = {}
    for t, res in sorted(results.items()):
        for r in res.manifest["rows"]:
            run = res.runs[(r["value"], r["seed"])]
            d = seen.setdefault(run.id, {"run": run.id, "tables": [], "epochs used": set(), "_run": run})
            if t not in d["tables"]:
                d["tables"].append(t)
            d["epochs used"].add(int(r["epochs"]))
    rows = []
    for d in seen.values():
        run = d["_run"]
        where = next((ev.get("trained_with") for ev in run.metrics.get("evaluations", {}).values() if ev.get("trained_with")), None)
        rows.append({"run": d["run"], "tables": ", ".join(map(str, d["tables"])),
                     "epochs used": ", ".join(map(str, sorted(d["epochs used"]))),
                     "epochs trained": run.epochs_done, "wall time (s)": round(run.wall_seconds(), 1),
                     "trained on": f"{where['backend']}, {where.get('device', '?')}" if where else "not recorded"})
    df = pd.DataFrame(rows, columns=["run", "tables", "epochs used", "epochs trained", "wall time (s)", "trained on"])
    return df.set_index("run")


# ---------------------------------------------------------------------------------------------
# Export: papermill -> HTML (self-contained) -> PDF (headless Chromium)

PRINT_CSS = """
/* fer_utils.report: reading and print styles */
body.jp-Notebook { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em; }
.jp-RenderedHTMLCommon table { table-layout: auto; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { font-size: 12px; }
.jp-OutputArea-output img, .jp-RenderedImage img { max-width: 100%; height: auto; }
.jp-RenderedHTMLCommon h1 { font-size: 1.9em; }
.jp-RenderedHTMLCommon h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.4em; }
.fer-banner { border: 2px solid #c0392b; background: #fdecea; padding: .6em 1em; border-radius: 4px; }
.fer-note { color: #555; font-size: .92em; }
.jp-RenderedHTMLCommon table.fer-claims td, .jp-RenderedHTMLCommon table.fer-claims th { font-size: inherit; }
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
@media print {
  main { max-width: none; padding: 0; }
  body.jp-Notebook { font-size: 10.5pt; }
  .jp-Cell { padding: 0 !important; }
  /* scrollable boxes and display:table wrappers do not split across pages in Chromium */
  .jp-OutputArea, .jp-OutputArea-child, .jp-OutputArea-output, .jp-MarkdownOutput, .jp-Cell-outputArea {
    overflow: visible !important; }
  .jp-OutputArea-child, .jp-OutputArea-output { display: block !important; }
  .jp-RenderedHTMLCommon table { font-size: 8pt; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { font-size: 8pt; padding: 2px 4px !important; }
  table, figure, img, .jp-RenderedImage, .fer-keep { break-inside: avoid; page-break-inside: avoid; }
  table.fer-claims { break-inside: auto; page-break-inside: auto; }
  h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
  .fer-pagebreak { break-before: page; page-break-before: always; height: 0; }
  a { color: inherit; text-decoration: none; }
}
"""

_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}<style type="text/css">""" + PRINT_CSS + """</style>{%- endblock html_head_css -%}
"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def _strip_stderr(nb) -> None:
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


def execute_report(profile: str = "demo", dest=None) -> Path:
    """Execute the report notebook with papermill into results/executed/06_report.ipynb.

    Always re-executed: it only reads manifests and the run store, so it takes seconds, and a
    stale executed copy (from an earlier ``fer run``) could otherwise be exported."""
    import papermill as pm

    from .backend import quiet

    quiet()
    src = paths.NOTEBOOKS_DIR / f"{REPORT_NAME}.ipynb"
    dest = Path(dest) if dest is not None else paths.EXECUTED_DIR / f"{REPORT_NAME}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(dest)
    try:
        pm.execute_notebook(str(src), str(tmp), parameters={"profile": profile}, cwd=str(paths.NOTEBOOKS_DIR),
                            kernel_name="python3", progress_bar=False)
        os.replace(tmp, dest)
    except pm.PapermillExecutionError as exc:
        os.replace(tmp, dest)  # keep the failed notebook, with papermill's banner, for reading
        raise FerError(f"the report notebook failed at cell {exc.exec_count}: {exc.ename}: {exc.evalue}; "
                       f"the executed notebook is kept at {dest}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def to_html(executed, dest, show_code: bool = False) -> Path:
    """A self-contained HTML file (images inline as base64, no scripts from the web)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    _strip_stderr(nb)
    nb.metadata["title"] = "Facial expression recognition on RAF-DB: the course report reproduced"
    exporter = HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"fer_report.html.j2": _TEMPLATE})],
                            template_file="fer_report.html.j2", exclude_input=not show_code,
                            exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    atomic_write_text(dest, body)
    os.chmod(dest, 0o644)  # mkstemp made it private; a report is meant to be shared
    return Path(dest)


def to_pdf(html, dest, chromium: str | None = None, timeout: float = 180) -> Path:
    """Print ``html`` to PDF with a headless Chromium (raises FerError when it fails)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FerError("no Chromium found (chromium, chromium-browser or google-chrome)")
    html, dest = Path(html).resolve(), Path(dest)
    tmp = temp_path_for(dest)
    with tempfile.TemporaryDirectory(prefix="fer-chromium-") as profile_dir:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", "--no-pdf-header-footer",
               "--print-to-pdf-no-header", f"--print-to-pdf={tmp}", html.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise FerError(f"{chromium} did not finish printing {html} within {timeout:.0f}s") from None
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FerError(f"{chromium} could not print {html} to PDF (exit {proc.returncode}): {' | '.join(tail)}")
    os.replace(tmp, dest)
    return dest


def export_report(profile: str = "demo", show_code: bool = False, executed=None) -> dict:
    """Execute the report notebook and export it: results/report.html (self-contained) and,
    where a Chromium is installed, results/report.pdf. ``executed``: export that executed
    notebook instead of executing the report notebook. Returns the paths written."""
    t0 = time.perf_counter()
    if executed is None:
        print(f"Executing {paths.NOTEBOOKS_DIR / (REPORT_NAME + '.ipynb')} (profile {profile}) ...", flush=True)
        executed = execute_report(profile)
    out = {"executed": Path(executed)}
    out["html"] = to_html(executed, paths.RESULTS_DIR / "report.html", show_code=show_code)
    print(f"HTML report: {out['html']}")
    chromium = find_chromium()
    if chromium is None:
        print("No PDF: no Chromium on PATH (chromium, chromium-browser or google-chrome). Install one "
              "(e.g. `apt-get install chromium`), then run `fer report` again; or print the HTML from a browser.")
    else:
        try:
            out["pdf"] = to_pdf(out["html"], paths.RESULTS_DIR / "report.pdf", chromium)
            print(f"PDF report:  {out['pdf']}")
        except FerError as exc:
            print(f"No PDF: {exc}. The HTML report is complete; print it from a browser.", file=sys.stderr)
    print(f"Report exported in {time.perf_counter() - t0:.0f}s.")
    return out
