"""The report's choices and claims, checked against ours.

Three things every notebook shows the same way, each written once here:

* :func:`fmt_mean_std`: a number, or ``mean ± std`` over seeds (:func:`mean_std` from samples);
* :func:`picked_by`: who picked a row of a table (the report itself, the report's rule on our
  numbers, the held-out rule);
* :func:`report_vs_ours`: a table in the report's format with the report's published row, ours
  and the difference for every grid value (and :func:`said_vs_got`, the same in a sentence).

Then the claims: pure functions of table results. Each is evaluated twice, on our numbers and on
the report's own published numbers (:func:`fer_utils.study.tables.published_result`), so a reader sees both where our
reproduction disagrees with the report and where the report disagrees with itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fer_utils.study.protocol import METRIC_COLUMNS, REPORT_CHOICES, TABLE_FACTOR_LABEL

from fer_utils.study.tables import TableResult, at_report_scale, published_result
from fer_utils.study.protocol import published_row, report_equivalent, same_value

SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE = "supported", "not supported", "not testable here"


# ---------------------------------------------------------------------------------------------
# Formatting, who picked a row, report vs ours


def fmt_mean_std(mean, std=0.0, n: int = 1, digits: int = 4) -> str:
    """``mean`` alone for one seed, ``mean ± std`` for several; a dash for a missing value.

    >>> fmt_mean_std(0.75), fmt_mean_std(0.75, 0.0123, n=3), fmt_mean_std(float("nan"))
    ('0.7500', '0.7500 ± 0.0123', '–')
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{float(mean):.{digits}f} ± {float(std):.{digits}f}" if n > 1 else f"{float(mean):.{digits}f}"


def mean_std(samples, digits: int = 4) -> str:
    """:func:`fmt_mean_std` of samples (one per seed; std with ddof=1)."""
    a = np.asarray(samples, dtype=float)
    return fmt_mean_std(a.mean(), a.std(ddof=1) if len(a) > 1 else 0.0, len(a), digits)


def _fmt_signed(x, digits=4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.{digits}f}"


def picked_by(result: TableResult, value) -> list[str]:
    """Who picked the row at grid ``value``, in this order: "the report" (its published
    choice, matched at the report's scale), "report's rule" (the report's rule applied to our
    numbers), "held-out rule" (max held-out validation accuracy, with ``holdout`` only)."""
    out = []
    eq = report_equivalent(result.table, value, result.manifest["profile"])
    if same_value(eq, REPORT_CHOICES[result.table]["value"]):
        out.append("the report")
    if same_value(value, result.picks.get("report")):
        out.append("report's rule")
    if same_value(value, result.picks.get("sound")):
        out.append("held-out rule")
    return out


ROW_KINDS = ("report", "ours", "diff")


def _value_label(v, eq) -> str:
    s = f"{float(v):g}"
    if eq is not None and not math.isclose(float(eq), float(v)):
        s += f" (= {float(eq):g})"
    return s


def report_vs_ours(result: TableResult) -> pd.DataFrame:
    """The table in the report's format (one column per metric), three rows per grid value:
    the report's published value, ours (:func:`fmt_mean_std` over seeds) and the difference
    (ours - report). Column 'Chosen by' (:func:`picked_by`) marks the report's choice on its
    row and our picks on ours. Index: (grid value, with its report equivalent in brackets
    where scaled; kind)."""
    n = result.n_seeds
    records, index = [], []
    for v in result.mean.index:
        prof = result.manifest["profile"]
        published = published_row(result.table, v, prof)
        label = _value_label(v, report_equivalent(result.table, v, prof))
        rep, ours, diff = {}, {}, {}
        for i, c in enumerate(METRIC_COLUMNS):
            r = published[i] if published is not None else float("nan")
            o = float(result.mean.loc[v, c])
            rep[c] = fmt_mean_std(r)
            ours[c] = fmt_mean_std(o, result.std.loc[v, c], n)
            diff[c] = _fmt_signed(o - r)
        who = picked_by(result, v)
        rep["Chosen by"] = "the report" if "the report" in who else ""
        ours["Chosen by"] = "; ".join(w for w in who if w != "the report")
        diff["Chosen by"] = ""
        for kind, rec in zip(ROW_KINDS, (rep, ours, diff)):
            records.append(rec)
            index.append((label, kind))
    idx = pd.MultiIndex.from_tuples(index, names=[TABLE_FACTOR_LABEL[result.table], ""])
    return pd.DataFrame(records, index=idx, columns=[*METRIC_COLUMNS, "Chosen by"])


def said_vs_got(result: TableResult) -> str:
    """One sentence: what the report chose from this table, and what our numbers pick."""
    choice = REPORT_CHOICES[result.table]
    label = TABLE_FACTOR_LABEL[result.table].lower()

    def fmt(v):
        eq = report_equivalent(result.table, v, result.manifest["profile"])
        return f"{v:g}" if eq is None or same_value(eq, v) else f"{v:g} (= {eq:g} at the report's scale)"

    ours = result.picks["report"]
    eq = report_equivalent(result.table, ours, result.manifest["profile"])
    agree = "the same" if eq is not None and same_value(eq, choice["value"]) else "a different"
    s = (f"The report picked {label} {choice['value']:g} by {choice['rule']}; applied to our "
         f"numbers the same rule picks {fmt(ours)}: {agree} choice.")
    if result.picks.get("sound") is not None:
        s += f" On the held-out validation split (max Val_accuracy) the pick is {fmt(result.picks['sound'])}."
    return s


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
    return "; ".join(f"{name} {v:g}: {fmt_mean_std(mean.loc[v, col], std.loc[v, col], n)}" for v in mean.index)


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
        ours = fn(mean, std, res.n_seeds)
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


def claims_summary(items: list[Claim]) -> str:
    ours = pd.Series([c.verdict for c in items]).value_counts()
    theirs = pd.Series([c.report_verdict for c in items]).value_counts()
    f = lambda s: ", ".join(f"{s.get(k, 0)} {k}" for k in (SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE))
    return f"On our results: {f(ours)}. On the report's own numbers: {f(theirs)}."


