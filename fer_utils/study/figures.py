"""Figures: training curves per table row, Figure 12, the tables per seed, confusion matrices,
contact sheets.

The plots return the figure and, given ``save=``, write it atomically under ``figures/`` as PNG
(and SVG, which is cheap for line plots). The contact sheets write PNGs: the sorting step's
under the OUTPUT it sorted into, the synthetic set's under ``figures/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_utils import paths
from fer_utils.atomic import temp_path_for
from fer_utils.study.protocol import TABLE_FACTOR_LABEL


def _plt():
    # Headless machines get Agg automatically; notebooks keep their inline backend.
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, name: str, formats=("png", "svg"), folder=None) -> list[Path]:
    folder = Path(folder) if folder is not None else paths.FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        dest = folder / f"{name}.{fmt}"
        tmp = temp_path_for(dest)
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format=fmt)
        os.replace(tmp, dest)
        out.append(dest)
    return out


def _epoch_axis(ax, n_epochs: int) -> dict:
    """Whole-number epoch ticks; markers when there are few epochs (a one-epoch run is a
    point, which a bare line would not show). Returns the plot keyword arguments."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if n_epochs <= 1:
        ax.set_xlim(0.5, 1.5)
        ax.set_xticks([1])
    return {"marker": "o", "markersize": 4} if n_epochs <= 12 else {}


def _value_label(table: int, v) -> str:
    name = TABLE_FACTOR_LABEL[table].lower()
    return f"{name} {float(v):g}"


def plot_curves(result, save: str | None = None):
    """Loss (left) and accuracy (right) over epochs, train solid and validation dashed, one
    colour per row of the table (mean over seeds)."""
    from fer_utils.study.tables import curves

    plt = _plt()
    df = curves(result)
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, df["value"].nunique()))
    kw = _epoch_axis(ax_l, int(df["epoch"].max()))
    _epoch_axis(ax_a, int(df["epoch"].max()))
    for c, (v, g) in zip(colours, df.groupby("value", sort=False)):
        m = g.groupby("epoch").mean(numeric_only=True)
        lab = _value_label(result.table, v)
        ax_l.plot(m.index, m["loss"], color=c, label=f"{lab} train", **kw)
        ax_l.plot(m.index, m["val_loss"], color=c, ls="--", label=f"{lab} val", **kw)
        ax_a.plot(m.index, m["accuracy"], color=c, label=f"{lab} train", **kw)
        ax_a.plot(m.index, m["val_accuracy"], color=c, ls="--", label=f"{lab} val", **kw)
    for ax, t in ((ax_l, "Loss"), (ax_a, "Accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(t.lower())
        ax.set_title(f"Training and validation {t.lower()}")
        ax.grid(alpha=0.3)
    ax_a.set_ylim(0, 1)
    ax_a.legend(fontsize=7, ncol=2, loc="lower right")
    fig.suptitle(result.caption.replace("Results", "curves"), fontsize=11)
    fig.tight_layout()
    if save:
        save_figure(fig, save)
    return fig


def figure12(result, save: str | None = "figure12"):
    """The report's Figure 12: for each batch size, training and validation loss over epochs
    (left, a1..e1) and accuracy (right, a2..e2)."""
    from fer_utils.study.tables import curves

    plt = _plt()
    df = curves(result)
    values = list(dict.fromkeys(df["value"]))
    fig, axes = plt.subplots(len(values), 2, figsize=(10, 2.4 * len(values)), squeeze=False, sharex=True)
    letters = "abcdefghij"
    for i, v in enumerate(values):
        m = df[df["value"] == v].groupby("epoch").mean(numeric_only=True)
        al, aa = axes[i]
        kw = _epoch_axis(al, len(m))
        _epoch_axis(aa, len(m))
        al.plot(m.index, m["loss"], label="training loss", color="tab:blue", **kw)
        al.plot(m.index, m["val_loss"], label="validation loss", color="tab:orange", **kw)
        aa.plot(m.index, m["accuracy"], label="training accuracy", color="tab:blue", **kw)
        aa.plot(m.index, m["val_accuracy"], label="validation accuracy", color="tab:orange", **kw)
        al.set_ylabel(f"batch {int(v)}")
        al.set_title(f"({letters[i]}\u2081) loss, batch size {int(v)}", fontsize=9)
        aa.set_title(f"({letters[i]}\u2082) accuracy, batch size {int(v)}", fontsize=9)
        aa.set_ylim(0, 1)
        for ax in (al, aa):
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].legend(fontsize=8, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    fig.suptitle("Figure 12. Training and validation loss (left) and accuracy (right) over epochs, per batch size", fontsize=10)
    fig.tight_layout()
    if save:
        save_figure(fig, save)
    return fig


def tables_by_seed(results: dict, save: str | None = None, folder=None):
    """Tables 1-4 at a glance, one panel per table: for each grid value every seed's selection
    accuracy (dots; the test split itself under the report's protocol, held-out faces under
    ``holdout``), the mean over seeds (black bar), under ``holdout`` the test accuracy
    (mean ± std, orange), and the report's published Val_accuracy (grey cross). The value the
    selection rule picked is marked under its tick. ``results``: :func:`fer_utils.study.tables.load_results`."""
    from fer_utils.study.protocol import grid_label, published_row, same_value

    plt = _plt()
    tables = sorted(results)
    ncols = min(2, len(tables))  # two panels a row: readable at a page's width
    nrows = -(-len(tables) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.5 * nrows + 0.6), sharey=True, squeeze=False)
    for ax in axes.flat[len(tables):]:
        ax.set_visible(False)
    for ax, t in zip(axes.flat, tables):
        res = results[t]
        man, df = res.manifest, res.per_seed
        holdout = man["selection"] == "holdout"
        picked = man["picks"].get("sound") if holdout else man["picks"].get("report")
        seeds = sorted(df["seed"].unique())
        offsets = np.linspace(-0.18, 0.18, len(seeds)) if len(seeds) > 1 else [0.0]
        labels = []
        for x, v in enumerate(res.mean.index):
            rows = df[df["value"] == v].sort_values("seed")
            ax.scatter([x + offsets[seeds.index(s)] for s in rows["seed"]], rows["Val_accuracy"], s=18,
                       color="tab:blue", zorder=3, gid="per seed", label="validation, per seed" if x == 0 else None)
            ax.hlines(res.mean.loc[v, "Val_accuracy"], x - 0.28, x + 0.28, color="black", lw=1.5, zorder=2,
                      label="mean over seeds" if x == 0 else None)
            if holdout and "Test_accuracy" in res.mean.columns:
                ax.errorbar(x + 0.36, res.mean.loc[v, "Test_accuracy"], yerr=res.std.loc[v, "Test_accuracy"], fmt="D",
                            ms=4, color="tab:orange", capsize=2, zorder=3, label="test (mean ± std)" if x == 0 else None)
            pub = published_row(t, v, man["profile"])
            if pub is not None:
                ax.scatter([x], [pub[3]], marker="x", s=30, color="grey", zorder=2, label="report" if x == 0 else None)
            label = grid_label(t, v, man["profile"]).replace(" (= ", "\n(= ")
            labels.append(label + ("\npicked" if same_value(v, picked) else ""))
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_xlabel(TABLE_FACTOR_LABEL[t].lower())
        ax.set_title(f"Table {t} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))})", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    first = results[tables[0]].manifest
    for ax in axes[:, 0]:
        ax.set_ylabel("held-out accuracy" if first["selection"] == "holdout" else "validation (= test) accuracy")
    fig.suptitle(f"The tables per seed (profile {first['profile']['name']}, selection {first['selection']})", fontsize=10)
    fig.tight_layout(rect=(0, 0.5 / (3.5 * nrows + 0.6), 1, 1))
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    if save:
        save_figure(fig, save, formats=("png",), folder=folder)
    return fig


def confusion_heatmap(confusion, class_names, title="Confusion matrix (rows: true class, normalised)", save: str | None = None):
    import seaborn as sns

    plt = _plt()
    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.0, 4.8))
    sns.heatmap(norm, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, xticklabels=class_names, yticklabels=class_names, ax=ax, cbar_kws={"label": "share of true class"})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if save:
        save_figure(fig, save, formats=("png",))
    return fig


def confusion_pair(results, titles, save: str | None = None, folder=None):
    """Two (or more) confusion matrices side by side, each normalised by true class, on one colour
    scale: ``results`` are :func:`fer_utils.apply.evaluate.evaluate` dicts (``confusion``,
    ``confusion_rows``, ``confusion_cols``); ``titles`` one per result."""
    import seaborn as sns

    plt = _plt()
    fig, axes = plt.subplots(1, len(results), figsize=(5.6 * len(results), 4.8), squeeze=False)
    for ax, r, title in zip(axes[0], results, titles):
        cm = np.asarray(r["confusion"], dtype=float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        sns.heatmap(norm, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, xticklabels=r["confusion_cols"],
                    yticklabels=r["confusion_rows"], ax=ax, cbar=ax is axes[0][-1], cbar_kws={"label": "share of true class"})
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if save:
        save_figure(fig, save, formats=("png",), folder=folder)
    return fig


# --------------------------------------------------------------------------------------------
# Contact sheets: the sorting step's folders, and the synthetic set


def beyond_cost_curve(runs, goal: float | None = 0.875, save: str | None = None, folder=None):
    """Accuracy against training cost for the beyond runs (:func:`fer_utils.study.beyond.finished_runs`):
    test accuracy with its 95% interval, test mean class accuracy and holdout accuracy against
    the epochs trained (each run a full schedule of its own length), one point per run; the
    hours each took are written beside its test point. ``goal``: a dashed line (None: none)."""
    plt = _plt()
    pts = sorted((r for r in runs if r.get("test")), key=lambda r: (r["epochs"], r["config"].get("seed", 0)))
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if pts:
        e = np.array([r["epochs"] for r in pts], float)
        acc = np.array([r["test"]["accuracy"] for r in pts])
        lo = acc - np.array([r["test"]["ci95"][0] for r in pts])
        hi = np.array([r["test"]["ci95"][1] for r in pts]) - acc
        ax.errorbar(e, acc, yerr=[lo, hi], fmt="o-", capsize=3, label="test accuracy (95% interval)")
        ax.plot(e, [r["test"]["mean_class_accuracy"] for r in pts], "s--", label="test mean class accuracy")
        ax.plot(e, [(r.get("holdout") or {}).get("accuracy", np.nan) for r in pts], "^:", label="holdout accuracy (selection)")
        for r, x, y in zip(pts, e, acc):
            secs = (r.get("cost") or {}).get("train_seconds")
            if secs:
                ax.annotate(f"{secs / 3600:.1f} h", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    if goal is not None:
        ax.axhline(goal, color="grey", ls="--", lw=1)
        ax.annotate(f"goal {goal:.1%}", (ax.get_xlim()[0], goal), textcoords="offset points", xytext=(4, -12), fontsize=8, color="grey")
    ax.set_xlabel("epochs trained (each a full cosine schedule)")
    ax.set_ylabel("accuracy")
    ax.set_title("Beyond model: accuracy against training cost", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    if save:
        save_figure(fig, save, formats=("png", "svg"), folder=folder)
    return fig


def contact_page(sheets, ncols: int = 2):
    """The contact sheets of an organized folder (:func:`organize_contact_sheets`) on one
    compact figure, ``ncols`` a row, each titled with its class: one page of a report."""
    from PIL import Image

    plt = _plt()
    sheets = list(sheets)
    nrows = max(1, -(-len(sheets) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5, 2.5 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, sheet in zip(axes.flat, sheets):
        with Image.open(sheet) as im:
            ax.imshow(im.convert("RGB"))
        ax.set_title(Path(sheet).stem, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def organize_contact_sheets(output, per_sheet: int = 16, *, thumb: int = 96) -> list[Path]:
    """One PNG per class of an organized folder: the ``per_sheet`` most confident faces above
    the ``per_sheet`` least confident ones, each labelled with its confidence.

    Written under OUTPUT itself, as ``OUTPUT/_sheets/<Class>.png`` (never the project's
    ``figures/``), each only when its bytes change, so a second run leaves OUTPUT as it was.
    The sheets written are recorded in ``OUTPUT/.organize-sheets.json``; a sheet of a class that
    is now empty is removed only when it is still the file recorded there. Thumbnails are read
    from the copies in OUTPUT. Returns the paths of the current sheets.
    """
    import hashlib
    import io
    import json

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    from fer_utils.atomic import atomic_write_bytes, atomic_write_json
    from fer_utils.apply.organize_io import SHEETS_DIR, read_predictions

    output = Path(output)
    record_path = output / ".organize-sheets.json"
    try:
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
    except (OSError, ValueError):
        record = {}  # unreadable: forget it, and so delete no old sheet
    df = read_predictions(output)
    cols = min(8, max(1, per_sheet))
    written, new_record = [], {}
    for cls, group in df.groupby("predicted", sort=True):
        group = group.sort_values(["confidence", "source"], ascending=[False, True])
        blocks = [("most confident", group.head(per_sheet)), ("least confident", group.iloc[::-1].head(per_sheet))]
        rows_per = [max(1, -(-len(b) // cols)) for _, b in blocks]
        fig = Figure(figsize=(cols * 1.25, sum(rows_per) * 1.5 + 0.8), dpi=100)
        FigureCanvasAgg(fig)
        sub = fig.subfigures(2, 1, height_ratios=[n + 0.5 for n in rows_per])
        for sf, (title, block), nrows in zip(sub, blocks, rows_per):
            sf.suptitle(f"{cls} ({len(group)} faces): {title}", fontsize=10)
            axes = np.atleast_1d(sf.subplots(nrows, cols)).ravel()
            sf.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.45 / (nrows * 1.5 + 0.45), hspace=0.3, wspace=0.08)
            for ax in axes:
                ax.axis("off")
            for ax, (_, r) in zip(axes, block.iterrows()):
                try:
                    with Image.open(output / r["destination"]) as im:
                        ax.imshow(np.asarray(im.convert("RGB").resize((thumb, thumb))))
                except OSError:
                    continue
                ax.set_title(f"{r['confidence']:.2f}", fontsize=8, pad=2)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        data = buf.getvalue()
        name = f"{SHEETS_DIR}/{cls}.png"
        path = output / name
        if not (path.exists() and path.read_bytes() == data):
            atomic_write_bytes(path, data)
        new_record[name] = hashlib.sha256(data).hexdigest()
        written.append(path)
    for name, digest in sorted(record.items()):
        old = output / name
        if name not in new_record and old.is_file() and hashlib.sha256(old.read_bytes()).hexdigest() == digest:
            old.unlink()  # a sheet we wrote, of a class that is now empty
    if new_record != record:
        atomic_write_json(record_path, new_record)
    return written


def synthetic_contact_sheet(root, out_png=None, per_class: int = 10, seed: int = 0, title: str | None = None) -> Path:
    """Save a figure with one labelled row per class of a synthetic set's train split.

    ``out_png`` defaults to ``figures/synthetic_contact_sheet.png``. ``title`` (after "NOT
    RAF-DB:") defaults to the set's seed, sizes and generator version from its manifest, never
    its path, so a committed figure does not name a temporary folder. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window (a notebook keeps its own backend)
    import matplotlib.pyplot as plt
    from PIL import Image

    from fer_utils.errors import DataError
    from fer_utils.data.layouts import CLASS_NAMES
    from fer_utils.data.synthetic import sheet_title

    root = Path(root)
    out_png = Path(out_png) if out_png is not None else Path(paths.FIGURES_DIR) / "synthetic_contact_sheet.png"
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(CLASS_NAMES), per_class, figsize=(per_class * 1.1, len(CLASS_NAMES) * 1.2),
                             squeeze=False)
    try:
        for r, c in enumerate(CLASS_NAMES):
            files = sorted((root / "class" / "train" / c).glob("*.jpg"))
            if not files:
                raise DataError(f"{root / 'class' / 'train' / c}: no images; expected a synthetic set made by 'fer synth'")
            picks = rng.choice(len(files), size=min(per_class, len(files)), replace=False)
            for k, ax in enumerate(axes[r]):
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ax.spines.values():
                    side.set_visible(False)
                if k < len(picks):
                    with Image.open(files[picks[k]]) as im:
                        ax.imshow(np.asarray(im.convert("RGB")))
            axes[r][0].set_ylabel(c, rotation=0, ha="right", va="center", fontsize=10)
        fig.suptitle(f"Synthetic faces (NOT RAF-DB): {title if title is not None else sheet_title(root)}", fontsize=9)
        fig.tight_layout()
        tmp = temp_path_for(out_png)
        try:
            fig.savefig(tmp, dpi=100, format="png")
            os.replace(tmp, out_png)
        finally:
            if tmp.exists():
                tmp.unlink()
    finally:
        plt.close(fig)
    return out_png
