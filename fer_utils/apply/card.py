"""The shipped model's card as people read it: ``MODEL_CARD.md`` rendered from ``card.json`` (a
pure function of the card, so a test renders it again and compares), and the one-line summary
``fer ship`` prints. :mod:`fer_utils.apply.ship` measures every number; this module only writes them.
"""

from __future__ import annotations


def ordered_tests(card: dict) -> list[tuple[str, dict]]:
    """The card's test sets in the order they were given (the training data's own first)."""
    order = card.get("test_order") or sorted(card["tests"])
    return [(n, card["tests"][n]) for n in order if n in card["tests"]]


def summary_line(card: dict) -> str:
    tests = "; ".join(f"{n} {t['accuracy']:.4f} ({t['ci95'][0]:.4f}-{t['ci95'][1]:.4f}, n={t['n']})"
                      for n, t in ordered_tests(card))
    w = card["weights"]
    return (f"shipped {card['name']} (run {card['run_id']}): {w['dtype']} weights, {w['bytes'] / 2**20:.2f} MiB; "
            f"holdout {card['holdout']['accuracy']:.4f}; {tests}")


def _training_data(card: dict) -> list[str]:
    on = card["trained_on"]
    sets = on.get("sets")
    if not sets:
        return [f"- {on['name']} (`{on['source']}`, {on['layout']} layout): {on['train_faces']:,} aligned face crops, of "
                f"which {on['held_out']:,} (a stratified, seeded 10%) were held out to select and check the model. RAF-DB "
                f"is licensed for non-commercial research only."]
    cfg = card["config"]
    lines = [f"- {t['name']}, train split (`{t['source']}`, {t['layout']} layout): {t['train_faces']:,} face crops, of "
             f"which {t['held_out']:,} (a stratified, seeded 10% of each class) were held out to select and check the "
             f"model. Licensed for non-commercial research only." for t in sets]
    per_epoch = f"{cfg['epoch_faces']:,} faces an epoch" if cfg.get("epoch_faces") else "every face once an epoch"
    share = ("an equal share from each set" if cfg.get("mix") == "equal" else "each set in proportion to its size")
    lines.append(f"- Mixed ({cfg.get('mix', 'proportional')}): {per_epoch}, {share}; every face is brought to "
                 f"{cfg['image_size']}x{cfg['image_size']} RGB the same way at training and test time (a grayscale "
                 f"face's one channel in all three).")
    return lines


def _weaknesses(card: dict) -> list[str]:
    sets = card["trained_on"].get("sets")
    if not sets:
        return ["- Trained on one data set of colour web photos of mostly adult faces; accuracy drops on faces unlike them "
                "(grayscale, low resolution, posed laboratory photos, children): see the test sets above.",
                "- Disgust and Fear, rare in RAF-DB, are the weakest classes; RAF-DB's labels are crowd-sourced and noisy."]
    names = " and ".join(t["name"] for t in sets)
    weakest = []
    for _, r in ordered_tests(card):
        for c in _weakest(r, card["class_names"]):
            weakest += [c] if c not in weakest else []
    return [f"- Trained on web photos of mostly adult faces ({names}); accuracy drops on faces unlike them (posed "
            "laboratory photos, children, strong head turns, occlusion): see the test sets above.",
            f"- The weakest classes on the test sets: {', '.join(weakest) or '-'}; the labels of {names} are noisy "
            "(crowd-sourced, or one annotator a face)."]


def _weakest(r: dict, class_names, k: int = 2) -> list[str]:
    rank = {c: i for i, c in enumerate(class_names)}
    return sorted(r["per_class_accuracy"], key=lambda c: (r["per_class_accuracy"][c], rank.get(c, 99)))[:k]


def _machine(w: dict) -> str:
    where = w.get("device_name") or w.get("device") or "a CPU"
    return f"{where} ({w.get('machine', '?')}; {w.get('backend', '?')} backend, Keras {w.get('keras', '?')})"


def _pct(v) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) and v == v else "-"


def _replaces(card: dict) -> list[str]:
    """The card's "Replaces" section: the models shipped before it, newest first ([] for the first)."""
    if not card.get("replaces"):
        return []
    lines = ["## Replaces", "", "The models shipped before this one, newest first (each holdout is its own run's):", ""]
    for r in card["replaces"]:
        tests = "; ".join(f"{t['name']} {_pct(t['accuracy'])}" for t in r.get("tests") or [])
        lines.append(f"- {r.get('name')} (run `{r.get('run_id')}`): holdout {_pct(r.get('holdout'))}"
                     + (f"; {tests}" if tests else "") + ".")
    return lines + [""]


def render_card(card: dict) -> str:
    """MODEL_CARD.md from card.json (a pure function: the test renders it again and compares)."""
    t = card["training"]
    cost = t.get("cost") or {}
    w = card["weights"]
    p = card["holdout"]["precision"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        "The facial expression model that ships inside `fer-utils`: `fer predict` and `fer organize` use it when no "
        "model is named, offline, with no training.",
        "",
        f"**Terms.** {card['terms']}",
        "",
        "## Intended use",
        "",
        "Research and teaching: labelling the expression of faces in photos (one of "
        + ", ".join(card["class_names"]) + ") to study expression recognition, sort a photo collection, or compare "
        "with other models. Out of scope: any decision about a person (hiring, policing, health, education, "
        "credit), emotion 'detection' as a claim about what someone feels (the labels are perceived expressions), "
        "surveillance, and commercial use (see Terms).",
        "",
        "## Model",
        "",
        f"- `{card['model']}`: a small residual network ({card['parameters']:,} parameters), input "
        f"{card['config']['image_size']}x{card['config']['image_size']} RGB, 7 softmax outputs; run `{card['run_id']}`.",
        f"- Weights: `{w['file']}`, {w['dtype']}, {w['bytes'] / 2**20:.2f} MiB, SHA-256 `{w['sha256']}`. "
        f"Stored as {w['dtype']}, computed in float32: on the {p['n']} held-out faces float32 scores "
        f"{_pct(p['float32_accuracy'])}, float16-rounded weights {_pct(p['float16_accuracy'])} "
        f"(float16 ships when within {100 * p['tolerance']:.1f} point).",
        "",
        "## Training data",
        "",
        *_training_data(card),
        f"- Recipe: `{t['command']}` (AdamW with a cosine schedule, label smoothing, MixUp/CutMix, class-balanced "
        f"loss, grayscale/low-resolution/erasing augmentation; `fer_utils.models.recipes.ResNetRecipe`).",
        f"- Cost: {t['epochs']} epochs, {t['train_seconds'] / 3600:.2f} h of training on "
        f"{_machine(t.get('trained_with') or {})}"
        + (f", {cost['images_per_second']:.0f} images/s" if cost.get("images_per_second") else "") + ".",
        "",
        "## Accuracy",
        "",
        "Each test set was scored once, with the shipped file. Intervals are 95% Wilson intervals.",
        "",
        "| test set | faces | accuracy (95% interval) | mean class accuracy |",
        "|---|---:|---|---:|",
    ]
    for name, r in ordered_tests(card):
        lines.append(f"| {name} (`{r['source']}`) | {r['n']:,} | {_pct(r['accuracy'])} ({_pct(r['ci95'][0])}-{_pct(r['ci95'][1])}) "
                     f"| {_pct(r['mean_class_accuracy'])} |")
    by_set = card["holdout"].get("by_set") or {}
    order = [t["name"] for t in card["trained_on"].get("sets", []) if t["name"] in by_set]  # the sets' order, not JSON's
    lines += ["", f"Holdout accuracy (what selected it): {_pct(card['holdout']['accuracy'])} of {card['holdout']['n']} faces"
              + (" (" + "; ".join(f"{n} {_pct(by_set[n]['accuracy'])} of {by_set[n]['n']:,}" for n in order) + ")" if order else "")
              + ".", ""]
    for name, r in ordered_tests(card):
        cols = r["confusion_cols"]
        lines += [f"### {name}: per class and confusion (rows: true class)", "",
                  "| true \\ predicted | " + " | ".join(cols) + " | accuracy |", "|---|" + "---:|" * (len(cols) + 1)]
        for c, row in zip(r["confusion_rows"], r["confusion"]):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + f" | {_pct(r['per_class_accuracy'].get(c))} |")
        weakest = _weakest(r, card["class_names"])
        lines += ["", "Weakest classes: " + ", ".join(f"{c} {_pct(r['per_class_accuracy'][c])}" for c in weakest) + ".", ""]
    lines += [
        "## Known weaknesses",
        "",
        *_weaknesses(card),
        "- Faces must be roughly frontal and at least 20 px for the detector (MTCNN) to find them in photos; a face "
        "crop is used as is.",
        "",
        *_replaces(card),
        "## Rebuild it",
        "",
        "```bash",
        t["command"],
        card["ship_command"],
        "```",
        "",
        "`tests/test_shipped.py` checks this card against the shipped file.",
        "",
    ]
    return "\n".join(lines)
