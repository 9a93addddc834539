"""Figures: training curves per table row, Figure 12, confusion matrices. Matplotlib/seaborn.

Every function returns the figure and, given ``save=``, writes it atomically under
``figures/`` as PNG (and SVG, which is cheap for line plots).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import paths
from .atomic import temp_path_for
from .config import TABLE_FACTOR_LABEL


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
    from .experiments import curves

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
    from .experiments import curves

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
