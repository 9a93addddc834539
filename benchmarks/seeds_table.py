"""A recipe's seeds and their ensemble (issue 26 item 4), rebuilt from the committed files in a
seeds folder (made by its train and compare scripts) and seed 0's model card (seed0-card.json:
the card of the model shipped from seed 0's run).

    python benchmarks/seeds_table.py [FOLDER]

FOLDER: benchmarks/seeds (the RAF-DB-only recipe, the default) or benchmarks/mixture/seeds (the
shipped recipe: RAF-DB and FER2013, equal mix). It holds seed0-card.json, scores/ (``fer evaluate
--json`` of seeds 1 and 2) and compare/ (``fer compare`` of seed 0 against the ensemble); the
other seeds' run files are the ensemble's members, found in FOLDER/runs or FOLDER/../runs.

Prints two Markdown tables: each seed, their mean ± standard deviation and the ensemble (the mean
of the three models' probabilities) on RAF-DB test and FER2013 PublicTest, plain and with flip
TTA; and the ensemble against seed 0 face for face (McNemar's exact test). Seed 0's scores are
its shipped float16 file's (the compare files name it ``shipped``).
docs/results.md quotes this output; tests/test_mixture.py checks that it still does.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "seeds"
#: Seed 0's model card (the model shipped from it, float16), kept in each seeds folder.
CARD_NAME = "seed0-card.json"
#: The card of the model the package ships now (seed 0 of one recipe or the other).
SHIPPED_CARD = HERE.parent / "fer_utils" / "weights" / "card.json"
SETS = [("raf-basic", "RAF-DB test"), ("fer2013", "FER2013 PublicTest")]
#: A held-out set's name in a run's metrics (its data file) and in a card (its test set's).
SET_NAMES = {"raf-basic": "RAF-DB", "fer2013": "FER2013"}
COLUMNS = [(d, t) for d, _ in SETS for t in ("none", "flip")]


def _shipped_note(card: dict) -> str:
    """What seed 0's row says of it: shipped now, or shipped until the model named after it in the
    shipped card's lineage (``replaces``, newest first) replaced it."""
    now = json.loads(SHIPPED_CARD.read_text()) if SHIPPED_CARD.is_file() else {}
    if now.get("run_id") == card["run_id"]:
        return "the shipped model (float16)"
    chain = [now, *now.get("replaces", [])]
    for newer, older in zip(chain, chain[1:]):
        if older.get("run_id") == card["run_id"]:
            return f"the model shipped until {newer.get('name')} replaced it (float16)"
    return f"a model shipped before {chain[-1].get('name', 'the one shipped now')} (float16)"


def _member_dirs(folder: Path, pairs: dict) -> list[Path]:
    """The run folders of the ensemble's members other than seed 0 (``shipped``), from its name."""
    names = {m for c in pairs.values() for m in c["b"]["model"]["model"].split("+")[1:]}
    out = []
    for name in sorted(names):
        found = [d / name for d in (folder / "runs", folder.parent / "runs") if (d / name / "metrics.json").is_file()]
        if not found:
            raise SystemExit(f"{folder}: the ensemble's member {name} has no run files in {folder / 'runs'} "
                             f"or {folder.parent / 'runs'}; copy its config.json, history.csv and metrics.json there")
        out.append(found[0])
    return out


def load(folder=FOLDER, card=None) -> dict:
    """{"runs": {seed: run facts}, "scores": {(model, set, tta): evaluation}, "pairs": {(set, tta): comparison}}."""
    folder = Path(folder)
    card = json.loads(Path(card or folder / CARD_NAME).read_text())
    by_set = card["holdout"].get("by_set", {})
    runs = {0: {"id": card["run_id"], "holdout": card["holdout"]["accuracy"], "cost": card["training"]["cost"],
                "holdout_by_set": {n: v["accuracy"] for n, v in by_set.items()},
                "where": card["training"]["trained_with"], "note": _shipped_note(card)}}
    scores, pairs = {}, {}
    for f in sorted((folder / "compare").glob("shipped-ensemble-*.json")):
        data, tta = f.stem[len("shipped-ensemble-"):].rsplit("-", 1)
        c = json.loads(f.read_text())
        scores[(0, data, tta)], scores[("ensemble", data, tta)] = c["a"], c["b"]
        pairs[(data, tta)] = c
    for d in _member_dirs(folder, pairs):
        m = json.loads((d / "metrics.json").read_text())
        last = m["evaluations"][str(max(int(e) for e in m["evaluations"]))]
        seed = json.loads((d / "config.json").read_text())["seed"]
        runs[seed] = {"id": d.name, "holdout": last["holdout"]["accuracy"], "cost": m["cost"], "where": last.get("trained_with", {}),
                      "holdout_by_set": {SET_NAMES.get(k, k): v["accuracy"] for k, v in last.get("holdout_by_source", {}).items()},
                      "test": last["test"], "test_tta": last["test_tta"], "test_by_source": last.get("test_by_source", {}),
                      "note": ""}
    for f in sorted((folder / "scores").glob("seed*.json")):
        seed, data, tta = f.stem.split("-", 2)[0][4:], *f.stem.split("-", 1)[1].rsplit("-", 1)
        scores[(int(seed), data, tta)] = json.loads(f.read_text())
    return {"runs": runs, "scores": scores, "pairs": pairs}


def _p(p: float) -> str:
    return "< 1e-300" if p < 1e-300 else f"{p:.1e}"


def _cell(s) -> str:
    return f"{s['accuracy']:.4f} ({s['ci95'][0]:.4f}-{s['ci95'][1]:.4f}), mean class {s['mean_class_accuracy']:.3f}"


def _holdout(r) -> str:
    """The run's holdout accuracy, and each set's where it held out faces of several."""
    by_set = r["holdout_by_set"]
    if len(by_set) < 2:
        return f"{r['holdout']:.4f}"
    return f"{r['holdout']:.4f} (" + ", ".join(f"{n} {by_set[n]:.4f}" for n in sorted(by_set, key=_set_order)) + ")"


def _set_order(name: str) -> int:
    names = list(SET_NAMES.values())
    return names.index(name) if name in names else len(names)


def tables(folder=FOLDER, card=None) -> str:
    got = load(folder, card)
    runs, scores, pairs = got["runs"], got["scores"], got["pairs"]
    head = " | ".join(f"{name}{', flip TTA' if t == 'flip' else ''}" for d, name in SETS for t in ("none", "flip"))
    out = [f"| model | holdout | {head} | training |", "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    seeds = sorted(runs)
    for s in seeds:
        r, c = runs[s], runs[s]["cost"]
        cells = [_cell(scores[(s, d, t)]) if (s, d, t) in scores else "" for d, t in COLUMNS]
        out.append(f"| seed {s} (`{r['id']}`{', ' + r['note'] if r['note'] else ''}) | {_holdout(r)} | " + " | ".join(cells)
                   + f" | {c['train_seconds'] / 3600:.2f} h, {r['where'].get('device_name', '?')} |")
    if all((s, d, t) in scores for s in seeds for d, t in COLUMNS):
        def spread(values):
            return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"

        cells = [spread([scores[(s, d, t)]["accuracy"] for s in seeds]) + ", mean class "
                 + f"{statistics.mean(scores[(s, d, t)]['mean_class_accuracy'] for s in seeds):.3f}" for d, t in COLUMNS]
        out.append(f"| mean ± std of the {len(seeds)} seeds | {spread([runs[s]['holdout'] for s in seeds])} | " + " | ".join(cells) + " | |")
    if all(("ensemble", d, t) in scores for d, t in COLUMNS):
        cells = [_cell(scores[("ensemble", d, t)]) for d, t in COLUMNS]
        hours = sum(runs[s]["cost"]["train_seconds"] for s in seeds) / 3600
        out.append(f"| ensemble of the {len(seeds)} seeds (mean probability) | not measured (each seed held out other faces) | "
                   + " | ".join(cells) + f" | {hours:.2f} h in all |")
    out += ["", "| ensemble - seed 0 | test set | difference | ensemble right, seed 0 wrong / seed 0 right, ensemble wrong | McNemar exact p |",
            "|---|---|---|---|---|"]
    for d, name in SETS:
        for t in ("none", "flip"):
            if (d, t) not in pairs:
                continue
            c = pairs[(d, t)]
            m = c["mcnemar"]
            out.append(f"| both {'with flip TTA' if t == 'flip' else 'plain'} | {name} (n={c['a']['n']:,}) | {-c['difference']:+.4f} | "
                       f"{m['c']} / {m['b']} | {_p(m['p_exact'])} |")
    where = {s: runs[s]["where"] for s in seeds}
    out += ["", f"Seed 0 is {runs[0]['note'].replace(' (float16)', '')} (float16 weights; trained on "
            f"{where[0].get('device_name', '?')}, {where[0].get('cpu_flags', '?')}); "
            + "; ".join(f"seed {s} trained on {where[s].get('device_name', '?')} ({where[s].get('cpu_flags', '?')}), "
                        f"Keras {where[s].get('keras', '?')} on {where[s].get('backend', '?')}" for s in seeds if s)
            + ". Training hours were measured while other jobs shared the CPU."]
    return "\n".join(out)


if __name__ == "__main__":
    print(tables(sys.argv[1] if len(sys.argv) > 1 else FOLDER))
