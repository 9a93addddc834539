"""The report: Tables 1-4 beside the course report's, the final model, provenance, and the
HTML pieces of the report notebook.

The report notebook (``notebooks/06_report.ipynb``) reads only the table manifests and the run
store (it trains nothing) and calls the functions here and in :mod:`fer_utils.study.claims` (the
checked claims). Executing and exporting it (papermill, HTML, PDF) is
:func:`fer_utils.study.notebooks.export_report`'s job.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.study.claims import NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, Claim, claims_summary, fmt_mean_std, mean_std, picked_by, report_vs_ours
from fer_utils.study.protocol import RAF_DB_TRAIN, TABLE_FACTOR_LABEL
from fer_utils.study.profiles import PROFILES
from fer_utils.study.experiments import TABLE_NOTEBOOKS, TABLES
from fer_utils.study.protocol import final_value, same_value

# ---------------------------------------------------------------------------------------------
# What the experiment notebooks left behind


def missing_tables_message(results: dict, profile: str) -> str | None:
    """None when Tables 1-4 all have results; else one line saying which lack them and the
    command that makes them (with ``--data`` for the profiles that need RAF-DB)."""
    missing = [t for t in TABLES if t not in results]
    if not missing:
        return None
    nbs = ",".join(TABLE_NOTEBOOKS[t] for t in missing)
    data = " --data /path/to/raf-basic.zip" if PROFILES.get(profile) and PROFILES[profile].data != "synthetic" else ""
    return (f"Table(s) {', '.join(map(str, missing))} have no results for profile {profile!r} yet: "
            f"run `fer run --profile {profile}{data} --notebooks {nbs}` (or `fer tables --profile {profile}{data}`), "
            f"then this notebook again.")


def synthetic_banner(results: dict) -> str | None:
    """The red banner of a report made on the synthetic stand-in (HTML), or None on real data."""
    if not any(r.manifest["data"]["synthetic"] for r in results.values()):
        return None
    return ('<div class="fer-banner"><b>Synthetic data.</b> These results come from the SYNTHETIC stand-in data set '
            'that ships with the project, not from RAF-DB. They check that the pipeline works; they say nothing about '
            'the numbers of the report. For the real study: <code>make report DATA=/path/to/RAF-DB PROFILE=full</code>.</div>')


def study_line(results: dict) -> str:
    """One Markdown line: profile, epoch scale, seeds, selection and data of these results."""
    first = next(iter(results.values())).manifest
    p, d = first["profile"], first["data"]
    return (f"**Profile** `{p['name']}` ({p['description']}) · **epochs** scaled {p['epoch_scale']} · "
            f"**seeds** {', '.join(map(str, first['seeds']))} · **selection** `{first['selection']}` · "
            f"**data** {d['n_train']} train / {d['n_test']} test images at {d['image_size']} px. Full provenance at the end.")


# ---------------------------------------------------------------------------------------------
# Tables 1-4 beside the report's, styled for the HTML and the PDF

_TABLE_CSS = [
    {"selector": "caption", "props": "caption-side: top; font-weight: 600; font-size: 1.05em; text-align: left; white-space: nowrap; padding: 0 0 .4em 0; color: #222;"},
    {"selector": "th, td", "props": "padding: 3px 6px; text-align: right; white-space: nowrap; border: none;"},
    {"selector": "thead th", "props": "border-bottom: 1px solid #999; text-align: center;"},
    {"selector": "th.row_heading, th.index_name", "props": "text-align: left;"},
    {"selector": "", "props": "border-collapse: collapse; font-size: 0.82em; margin: .3em 0 1em 0;"},
]


def styled_comparison(result):
    """:func:`~fer_utils.study.claims.report_vs_ours` styled: the report's rows grey, ours bold,
    differences small; the report's chosen row shaded blue, the row our rule picks yellow."""
    df = report_vs_ours(result)
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
    out = pd.DataFrame(index=pd.Index([f"{float(v):g}" for v in result.mean.index], name=TABLE_FACTOR_LABEL[result.table]))
    for c in ("Val_accuracy", "Test_loss", "Test_accuracy"):
        out[c] = [fmt_mean_std(m, s, result.n_seeds) for m, s in zip(result.mean[c], result.std[c])]
    out["Chosen by"] = ["; ".join(picked_by(result, v)) for v in result.mean.index]
    return out


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
    if left:  # column-keyed table styles outrank the table-wide "td" rule (set_properties would not)
        st = st.set_table_styles({c: [{"selector": "td", "props": "text-align: left;"}] for c in left}, overwrite=False)
    return st


# ---------------------------------------------------------------------------------------------
# The final model: Table 4's row the study ends with (protocol.final_value), at its epochs,
# or, where the profile says so (the demo), that configuration trained to learn.


def final_model(results: dict) -> dict | None:
    """The study's final model on our results: Table 4's ``final`` entry (the report's batch
    2048 under ``chain="report"``, our pick under ``"selected"``; the demo scales its batch and
    epochs, see :func:`final_protocol_note`). Its test evaluation per seed, the confusion matrix
    summed over seeds and per-class accuracy (mean, std over seeds). None without Table 4."""
    res = results.get(4)
    if res is None:
        return None
    man = res.manifest
    if "final" in man:
        value, rows = man["final"]["value"], man["final"]["rows"]
        runs = [res.final_runs[r["seed"]] for r in rows]
    else:  # a manifest written before the final model had its own entry: the row itself
        value = final_value(man)
        rows = [r for r in man["rows"] if same_value(r["value"], value)]
        runs = [res.runs[(r["value"], r["seed"])] for r in rows]
    row_epochs = next((r["epochs"] for r in man["rows"] if same_value(r["value"], value)), None)
    evals, run_ids = [], []
    for r, run in zip(rows, runs):
        ev = run.evaluation(r["epochs"])
        if ev:
            evals.append(ev["test"])
            run_ids.append(run.id)
    out = {"value": value, "epochs": rows[0]["epochs"] if rows else None, "row_epochs": row_epochs,
           "config": runs[0].config if runs else None, "evaluations": evals, "per_class": None,
           "n_train": int(man["data"]["n_train"]), "profile": man["profile"]}
    if not evals:
        return out
    names = evals[0]["class_names"]
    cm = np.sum([np.asarray(e["confusion"]) for e in evals], axis=0)
    pcs = pd.DataFrame([e["per_class_accuracy"] for e in evals], columns=names)
    # Every seed scores the same test split: its class counts are one evaluation's row sums
    # (the summed matrix counts each face once per seed).
    per_class = pd.DataFrame({"test images": np.asarray(evals[0]["confusion"]).sum(axis=1), "mean": pcs.mean(),
                              "std": pcs.std(ddof=1) if len(evals) > 1 else pcs.mean() * 0},
                             index=pd.Index(names, name="class"))
    out.update(run_ids=run_ids, class_names=names, confusion=cm, per_class=per_class, n_test=int(evals[0]["n"]),
               accuracy=np.array([e["accuracy"] for e in evals]),
               mean_class_accuracy=np.array([e["mean_class_accuracy"] for e in evals]))
    return out


def optimizer_steps(n_train: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` epochs (the last batch of an epoch may be short).

    >>> optimizer_steps(12271, 2048, 100), optimizer_steps(1500, 2048, 3)
    (600, 3)
    """
    return -(-int(n_train) // int(batch_size)) * int(epochs)


def collapsed_class(final: dict) -> str | None:
    """The one class the final model predicts for every test face, or None when it predicts
    two or more (the collapse check)."""
    if not final or final.get("confusion") is None:
        return None
    predicted = np.flatnonzero(np.asarray(final["confusion"]).sum(axis=0))
    return final["class_names"][predicted[0]] if len(predicted) == 1 else None


def final_protocol_note(final: dict) -> str:
    """One paragraph (Markdown): how this profile's final model relates to the report's
    protocol. Under ``full`` and ``tenth`` it IS Table 4's row; the demo scales it."""
    cfg, n, prof = final["config"], final["n_train"], final["profile"]
    report_steps = optimizer_steps(RAF_DB_TRAIN, 2048, 100)
    if cfg is None or (cfg.batch_size == int(final["value"]) and final["epochs"] == final["row_epochs"]):
        return (f"The final model is Table 4's row itself (batch size {final['value']:g}, {final['epochs']} epochs), "
                f"as in the report's protocol.")
    per_epoch = optimizer_steps(n, int(final["value"]), 1)
    return (f"**How this differs from the report.** At the `{prof['name']}` profile the final model is *not* Table 4's "
            f"row. The report's batch {final['value']:g} on {n:,} training faces is {per_epoch} optimizer "
            f"step{'s' if per_epoch != 1 else ''} an epoch, {optimizer_steps(n, int(final['value']), final['row_epochs'])} "
            f"in the row's {final['row_epochs']} epochs: too few to leave the majority class. So here the same configuration "
            f"(lr {cfg.lr:g}, depth {cfg.depth}) is trained with the batch size scaled to the data size "
            f"({final['value']:g} × {n:,} / {RAF_DB_TRAIN:,} = {cfg.batch_size}: {optimizer_steps(n, cfg.batch_size, 1)} steps an epoch, "
            f"as batch {final['value']:g} takes on RAF-DB) for {final['epochs']} epochs, "
            f"{optimizer_steps(n, cfg.batch_size, final['epochs'])} steps in all (the report's final model took "
            f"{report_steps} on RAF-DB). The tables keep the report's batch sizes and epochs; under the `full` and "
            f"`tenth` profiles the final model is the row itself, exactly the report's protocol.")


def final_model_markdown(final: dict) -> str:
    """The final model's configuration, accuracies and, when it has collapsed, why (Markdown)."""
    cfg = final["config"]
    e = final["epochs"]
    s = (f"**Configuration**: lr {cfg.lr:g}, depth {cfg.depth}, batch size {cfg.batch_size}, {e} epoch{'s' if e != 1 else ''} "
         f"(seeds: {len(final['evaluations'])}; runs: {', '.join('`' + r + '`' for r in final['run_ids'])}).  \n"
         f"**Test accuracy**: {mean_std(final['accuracy'])} · **mean class accuracy**: "
         f"{mean_std(final['mean_class_accuracy'])} on {final['n_test']} test images.")
    only = collapsed_class(final)
    if only is not None:
        steps = optimizer_steps(final["n_train"], cfg.batch_size, e)
        s += (f"\n\n**This model has collapsed**: it predicts {only} for every test face. At this profile, batch size "
              f"{cfg.batch_size} on {final['n_train']} training images for {e} epochs is only {steps} optimizer "
              f"step{'s' if steps != 1 else ''}: too few to leave the majority class. The sorting step uses it all the "
              f"same, as the report did with its chosen model.")
    return s


def per_class_frame(final: dict, train_counts: dict | None = None) -> pd.DataFrame:
    pc = final["per_class"]
    n = len(final["evaluations"])
    out = pd.DataFrame(index=pc.index)
    if train_counts:
        total = sum(train_counts.values())
        out["share of train"] = [f"{100 * train_counts.get(c, 0) / total:.1f}%" for c in pc.index]
    out["test images"] = pc["test images"].astype(int)
    out["share of test"] = [f"{100 * c / max(pc['test images'].sum(), 1):.1f}%" for c in pc["test images"]]
    out["accuracy"] = [fmt_mean_std(m, s, n, digits=3) for m, s in zip(pc["mean"], pc["std"])]
    return out


# ---------------------------------------------------------------------------------------------
# The claims as HTML

_VERDICT_COLOUR = {SUPPORTED: "#d8f0d8", NOT_SUPPORTED: "#f8d7d3", NOT_TESTABLE: "#eeeeee"}


def claims_html(items: list[Claim]) -> str:
    """The claims as an HTML table that fits a portrait page: claim, where and the evidence
    (ours, then the report's) in one wide column; the two verdicts in narrow coloured ones."""
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


def claims_section_html(items: list[Claim]) -> str:
    """The claims section of the report: heading, a sentence on how to read it, the table and
    the counts (one HTML block, so that in the PDF the heading starts on the table's page)."""
    return ("<h2 id='claims'>The claims of the report, checked</h2>"
            "<p>Each claim the report draws from its tables, with a verdict computed from our numbers and, beside it, "
            "from the published numbers of the report. A claim is <em>not testable here</em> when this profile lacks "
            "the values it needs (e.g. the smoke profile has no batch size 2048). Epoch counts are compared at the "
            "scale of the report.</p>" + claims_html(items) + f"<p>{claims_summary(items)}</p>")


# ---------------------------------------------------------------------------------------------
# The sorting step (the course report's Figures 13-16) and "Beyond the report"


def sorting_section(output) -> dict | None:
    """What notebook 05 / ``fer organize`` left in ``output``: faces per folder, the contact
    sheets, the infant check (UTKFace names), and which model sorted. None when nothing was sorted."""
    from fer_utils.apply.choose import read_sorted_by
    from fer_utils.apply.organize_io import read_predictions
    from fer_utils.data.utkface import infant_check, infant_sentence

    output = Path(output)
    if not (output / "predictions.csv").exists():
        return None
    pred = read_predictions(output)
    classes = [c[2:] for c in pred.columns if c.startswith("p_")]
    counts = pred["predicted"].value_counts().reindex(classes, fill_value=0)
    try:
        infant = infant_sentence(infant_check(pred))
    except (KeyError, ValueError, ZeroDivisionError):
        infant = "No ages in the file names (not UTKFace): the infant check needs UTKFace names."
    chosen = read_sorted_by(output)
    return {"counts": counts, "sheets": sorted((output / "_sheets").glob("*.png")), "infant": infant, "n": len(pred),
            "sorted_by": chosen["line"] if chosen else "Which model sorted was not recorded (sorted before sorted_by.json existed)."}


def beyond_summary(results_dir=None) -> pd.DataFrame | None:
    """One row per finished run of a model other than the report's CNN (results/runs/): holdout and test accuracy, the test
    interval, mean class accuracy, flip TTA, cost. None when there is none."""
    from fer_utils.study.beyond import finished_runs

    rows = []
    for r in finished_runs(results_dir):
        t, tt, c = r["test"] or {}, r["test_tta"] or {}, r["cost"] or {}
        rows.append({"run": r["run_id"], "seed": r["config"].get("seed"), "epochs": r["epochs"],
                     "holdout accuracy": (r["holdout"] or {}).get("accuracy"), "test accuracy": t.get("accuracy"),
                     "95% interval": f"{t['ci95'][0]:.4f}-{t['ci95'][1]:.4f}" if t.get("ci95") else "",
                     "mean class accuracy": t.get("mean_class_accuracy"), "test accuracy, flip TTA": tt.get("accuracy"),
                     "parameters": c.get("parameters"),
                     "train seconds": round(c["train_seconds"]) if isinstance(c.get("train_seconds"), (int, float)) else None})
    return pd.DataFrame(rows).set_index("run") if rows else None


BEYOND_HOWTO = ("No beyond runs in this results folder. Produce them with `fer run --profile beyond --data "
                "/path/to/raf-basic.zip` (about 2 h on a 2-core CPU; `--profile beyond-smoke` for a minute-long check); "
                "notebook 07_beyond then compares the beyond model with the report's CNN.")
