"""The mixture experiment's tables (issue 26 item 2), rebuilt from the committed run files and
comparisons in benchmarks/mixture/ (made by benchmarks/mixture/train.sh and compare.sh).

    python benchmarks/mixture_table.py [FOLDER]
    python benchmarks/mixture_table.py --figure benchmarks/mixture/cost_curve.png [FOLDER]   # the cost curve

Prints two Markdown tables (each model on each test set; each pair, face for face, with
McNemar's exact test) and the rule's verdict: keep the mixture only if it holds RAF-DB test
within one point of RAF-DB-only while gaining on FER2013 (McNemar p < 0.05). docs/results.md
quotes this output; tests/test_docs.py checks that it still does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "mixture"
NAMES = {"a9d553f83d41": "RAF-DB only", "4132da5d66ae": "FER2013 only", "3606e30baedf": "both, equal mix"}
#: The cost curve's runs (train.sh with CURVE=1): twice the cost; then the RAF-DB-only recipe's RAF-DB
#: faces (40 epochs of 11,044) alone, and with as many FER2013 faces beside them (40 of 22,088).
CURVE = {"a072a767660d": "RAF-DB only, 20 epochs", "70067763ee97": "both, equal mix, 20 epochs",
         "shipped": "RAF-DB only, 40 epochs (seed 0, shipped before the mixture)",
         "b1ea4f4cc4c4": "both, equal mix, 40 epochs of 22,088 faces",
         "4ee2a6212b48": "both, equal mix, 40 epochs of 22,088 faces, seed 1",
         "410716aeda74": "both, equal mix, 40 epochs of 22,088 faces, seed 2",
         # resolution (RES=1): the first point at 96 px instead of 64 (2.25 times the work per face)
         "1b45603cf06a": "both at 96 px, equal mix, 10 epochs",
         # width (WIDE=1): the first point with 1.5 times the channels (2.2 times the work per face)
         "5f6ba74759bd": "both 1.5x as wide, equal mix, 10 epochs",
         # epochs (LONG=1): the mixture recipe at 60 epochs instead of 40 (1.5 times its cost; shipped since)
         "c3c700bda5b0": "both, equal mix, 60 epochs of 22,088 faces",
         # its seed 1 (LONG=1 LONG_SEEDS=1)
         "9dd27b45d8e9": "both, equal mix, 60 epochs of 22,088 faces, seed 1",
         # and its seed 2 (LONG=1 LONG_SEEDS=2)
         "4521735db268": "both, equal mix, 60 epochs of 22,088 faces, seed 2"}
#: Seed 0 of the mixture recipe (40 epochs of 22,088 faces): the model shipped before the 60-epoch run.
#: Its seeds 1 and 2 and their ensemble: ``python benchmarks/seeds_table.py benchmarks/mixture/seeds``.
SHIPPED_SEED0 = "b1ea4f4cc4c4"
#: Seed 0 of the RAF-DB-only recipe (40 epochs; shipped before the mixture): its model card, kept as numbers (benchmarks/seeds/).
CARD = Path(__file__).resolve().parent / "seeds" / "seed0-card.json"
#: Each domain's faces: the mixture at 20 epochs saw as many faces of each set as the one-set runs at 10.
LABELS = {**{t: n + ", 10 epochs" for t, n in NAMES.items()}, **CURVE}
SETS = [("raf-basic", "as-is", "RAF-DB test"), ("raf-basic", "gray", "RAF-DB test, grayscale"), ("fer2013", "as-is", "FER2013 PublicTest")]


#: Runs named otherwise in files made while they were shipped (compare.sh's R40 was ``shipped`` then).
ALIASES = {"4bf7d8bcd4f5": "shipped"}


def _tag(path: str) -> str:
    return next((ALIASES[a] for a in ALIASES if a in path), None) or next(t for t in LABELS if t in path)


def load(folder=FOLDER) -> tuple[dict, dict, list]:
    folder = Path(folder)
    runs = {}
    for d in sorted((folder / "runs").iterdir()):
        m = json.loads((d / "metrics.json").read_text())
        last = m["evaluations"][str(max(int(e) for e in m["evaluations"]))]
        runs[_tag(d.name)] = {"id": d.name, "holdout": last["holdout"]["accuracy"], "cost": m["cost"],
                              "where": last.get("trained_with", {}), "seed": json.loads((d / "config.json").read_text())["seed"]}
    card = json.loads(CARD.read_text())  # seed 0 of the RAF-DB-only recipe, 40 epochs
    runs["shipped"] = {"id": card["run_id"], "holdout": card["holdout"]["accuracy"], "cost": card["training"]["cost"],
                       "where": card["training"]["trained_with"]}
    scores, pairs = {}, []
    for f in sorted((folder / "compare").glob("*.json")):
        d = json.loads(f.read_text())
        key = (Path(d["a"]["data"]["source"]).stem, d["a"]["view"])
        ta, tb = _tag(d["a"]["model"]["model"]), _tag(d["b"]["model"]["model"])
        scores[(ta, *key)], scores[(tb, *key)] = d["a"], d["b"]
        pairs.append({"a": ta, "b": tb, "set": key, "diff": d["difference"], "mcnemar": d["mcnemar"], "n": d["a"]["n"]})
    return runs, scores, pairs


def _p(p: float) -> str:
    return "< 1e-300" if p < 1e-300 else f"{p:.1e}"


def _acc(s) -> str:
    return f"{s['accuracy']:.4f} ({s['ci95'][0]:.4f}-{s['ci95'][1]:.4f}), mean class {s['mean_class_accuracy']:.3f}"


def tables(folder=FOLDER) -> str:
    runs, scores, pairs = load(folder)
    label = {(d, v): name for d, v, name in SETS}
    out = ["| model (run) | holdout | " + " | ".join(name for _, _, name in SETS) + " | training |",
           "|---|---|" + "---|" * len(SETS) + "---|"]
    for tag, name in NAMES.items():
        r = runs[tag]  # the equal-cost three
        c = r["cost"]
        cells = [_acc(scores[(tag, d, v)]) if (tag, d, v) in scores else "" for d, v, _ in SETS]
        out.append(f"| {name} (`{r['id']}`) | {r['holdout']:.4f} | " + " | ".join(cells)
                   + f" | {c['epochs']} x {c['images_per_epoch']:,} faces, {c['train_seconds'] / 60:.0f} min |")
    out += ["", "| pair (A - B) | test set | A - B | A right, B wrong / B right, A wrong | McNemar exact p |", "|---|---|---|---|---|"]
    for p in sorted(pairs, key=lambda p: (SETS.index(next(s for s in SETS if s[:2] == p["set"])), p["a"], p["b"])):
        m = p["mcnemar"]
        out.append(f"| {LABELS[p['a']]} - {LABELS[p['b']]} | {label[p['set']]} (n={p['n']:,}) | {p['diff']:+.4f} | "
                   f"{m['b']} / {m['c']} | {_p(m['p_exact'])} |")
    curve = [t for t in LABELS if t in runs and not runs[t].get("seed", 0)]  # seed 0's runs
    if any(t in CURVE for t in curve):
        out += ["", "| run | faces seen | training | holdout | RAF-DB test | FER2013 PublicTest |", "|---|---|---|---|---|---|"]
        for t in sorted(curve, key=lambda t: (LABELS[t].split(",")[0], runs[t]["cost"]["epochs"])):
            c = runs[t]["cost"]
            cells = [f"{scores[(t, d, 'as-is')]['accuracy']:.4f}" if (t, d, "as-is") in scores else "" for d in ("raf-basic", "fer2013")]
            out.append(f"| {LABELS[t]} | {c['epochs'] * c['images_per_epoch']:,} | {c['train_seconds'] / 60:.0f} min | "
                       f"{runs[t]['holdout']:.4f} | " + " | ".join(cells) + " |")
    a, c = "a9d553f83d41", "3606e30baedf"
    raf = scores[(c, "raf-basic", "as-is")]["accuracy"] - scores[(a, "raf-basic", "as-is")]["accuracy"]
    fer = scores[(c, "fer2013", "as-is")]["accuracy"] - scores[(a, "fer2013", "as-is")]["accuracy"]
    p_fer = next(p["mcnemar"]["p_exact"] for p in pairs if {p["a"], p["b"]} == {a, c} and p["set"] == ("fer2013", "as-is"))
    keep = raf >= -0.01 and fer > 0 and p_fer < 0.05
    r20, m20, later = "a072a767660d", "70067763ee97", []
    if all((t, d, "as-is") in scores for t in (r20, m20) for d in ("raf-basic", "fer2013")):
        d_raf = scores[(m20, "raf-basic", "as-is")]["accuracy"] - scores[(r20, "raf-basic", "as-is")]["accuracy"]
        d_fer = scores[(m20, "fer2013", "as-is")]["accuracy"] - scores[(r20, "fer2013", "as-is")]["accuracy"]
        keep20 = d_raf >= -0.01 and d_fer > 0
        later = [f"At twice the cost (20 epochs each): mixture - RAF-DB only: RAF-DB test {100 * d_raf:+.1f} points, "
                 f"FER2013 {100 * d_fer:+.1f} points: {'KEEP' if keep20 else 'DROP'} at that cost."]
    m40 = SHIPPED_SEED0
    if all((t, d, "as-is") in scores for t in ("shipped", m40) for d in ("raf-basic", "fer2013")):
        d_raf = scores[(m40, "raf-basic", "as-is")]["accuracy"] - scores[("shipped", "raf-basic", "as-is")]["accuracy"]
        d_fer = scores[(m40, "fer2013", "as-is")]["accuracy"] - scores[("shipped", "fer2013", "as-is")]["accuracy"]
        p_raf, p_fer40 = (next(p["mcnemar"]["p_exact"] for p in pairs if {p["a"], p["b"]} == {"shipped", m40} and p["set"] == (d, "as-is"))
                          for d in ("raf-basic", "fer2013"))
        keep40 = d_raf >= -0.01 and d_fer > 0 and p_fer40 < 0.05
        later.append(f"With the same RAF-DB faces (40 epochs of 11,044; the mixture at twice that cost, 40 of 22,088, half of "
                     f"them FER2013's): mixture - RAF-DB only: RAF-DB test {100 * d_raf:+.1f} points (p {_p(p_raf)}), FER2013 "
                     f"{100 * d_fer:+.1f} points (p {_p(p_fer40)}): {'KEEP' if keep40 else 'DROP'}.")
    held = Path(folder) / "holdout-SM40.json"
    if held.is_file():
        h = json.loads(held.read_text())
        cells = [f"{n}: {v['a']['accuracy']:.4f} / {v['b']['accuracy']:.4f} ({-100 * v['difference']:+.1f} points, "
                 f"p {_p(v['mcnemar']['p_exact'])}, n={v['faces']:,})" for n, v in h["sets"].items()]
        later.append("The same two on each set's held-out faces (selection; RAF-DB only / mixture): " + "; ".join(cells) + ".")
    held = Path(folder) / "holdout-M40M60.json"
    if held.is_file():
        h = json.loads(held.read_text())
        cells = [f"{n}: {v['a']['accuracy']:.4f} / {v['b']['accuracy']:.4f} ({-100 * v['difference']:+.1f} points, "
                 f"p {_p(v['mcnemar']['p_exact'])}, n={v['faces']:,})" for n, v in h["sets"].items()]
        later.append("The mixture recipe at 40 and at 60 epochs (seed 0) on each set's held-out faces (40 / 60): "
                     + "; ".join(cells) + ".")
    where = runs[a]["where"]
    out += ["", f"Rule: keep the mixture only if RAF-DB test stays within 1 point of RAF-DB only while FER2013 gains. "
            f"Mixture - RAF-DB only: RAF-DB test {100 * raf:+.1f} points, FER2013 {100 * fer:+.1f} points (p {_p(p_fer)}): "
            f"{'KEEP' if keep else 'DROP'} at this cost.", *later,
            f"Machine: {where.get('device_name', '?')} ({where.get('machine', '?')}; {where.get('cpu_flags', '?')}), "
            f"Keras {where.get('keras', '?')} on {where.get('backend', '?')}, seed 0; minutes measured while other jobs shared the CPU "
            "(the cost is fixed by the faces seen)."]
    return "\n".join(out)


def curve(folder=FOLDER) -> dict:
    """The cost curve's points: {regime: [(faces seen, minutes, RAF-DB test score, FER2013 score, CPU), ...]}
    by faces seen, one regime per training data (RAF-DB only, FER2013 only, both), from the runs
    scored on both test sets as given."""
    runs, scores, _ = load(folder)
    out = {}
    for t, r in runs.items():
        if r.get("seed", 0) or not all((t, d, "as-is") in scores for d in ("raf-basic", "fer2013")):
            continue  # the curve is seed 0's
        regime = LABELS[t].split(",")[0]
        c = r["cost"]
        out.setdefault(regime, []).append((c["epochs"] * c["images_per_epoch"], c["train_seconds"] / 60,
                                           scores[(t, "raf-basic", "as-is")], scores[(t, "fer2013", "as-is")],
                                           r["where"].get("device_name", "?")))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in sorted(out.items())}


def figure(path, folder=FOLDER) -> Path:
    """The cost curve as a PNG: test accuracy (95% interval) against the faces a run was shown, on
    RAF-DB test and FER2013 PublicTest, one line per training data; each point says its minutes
    (and its CPU, where it is not the one most runs had)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = curve(folder)
    devices = [p[4] for v in pts.values() for p in v]
    usual = max(set(devices), key=devices.count) if devices else ""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    for ax, k, title in ((axes[0], 2, "RAF-DB test (3,068 faces)"), (axes[1], 3, "FER2013 PublicTest (3,556 faces)")):
        for regime, marker in (("RAF-DB only", "o-"), ("both", "s-"), ("FER2013 only", "^-"), ("both at 96 px", "D"),
                               ("both 1.5x as wide", "v")):
            if regime not in pts or (regime == "FER2013 only" and k == 2):  # 0.20 on colour faces: off the scale
                continue
            x = [p[0] for p in pts[regime]]
            acc = [p[k]["accuracy"] for p in pts[regime]]
            err = [[a - p[k]["ci95"][0] for a, p in zip(acc, pts[regime])], [p[k]["ci95"][1] - a for a, p in zip(acc, pts[regime])]]
            ax.errorbar(x, acc, yerr=err, fmt=marker, capsize=3, label=regime if regime != "both" else "both, equal mix (64 px)")
            for xi, a, p in zip(x, acc, pts[regime]):
                where = "" if p[4] == usual else f" ({' '.join(p[4].replace('(R)', '').split()[:2])})"  # another CPU
                left = regime == "both 1.5x as wide"  # beside the 96 px point: its label on the other side
                ax.annotate(f"{p[1]:.0f} min{where}", (xi, a), textcoords="offset points", ha="right" if left else "left",
                            xytext={"both at 96 px": (8, 3), "both 1.5x as wide": (-7, 1)}.get(regime, (4, -11)), fontsize=7)
        ax.set_xscale("log", base=2)
        ticks = sorted({p[0] for v in pts.values() for p in v})
        ax.set_xticks(ticks, [f"{t / 1000:.0f}k" for t in ticks])
        ax.set_xlim(ticks[0] / 1.6, ticks[-1] * 1.35)  # room for the labels beside the first and last points
        ax.minorticks_off()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("faces shown in training (log scale)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (95% interval)")
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle("Issue 26 cost curve: resnet, 64 px unless said, seed 0; minutes of training on a 2-core CPU", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--figure"]:
        print(figure(args[1], *(args[2:3] or [FOLDER])))
    else:
        print(tables(args[0] if args else FOLDER))
