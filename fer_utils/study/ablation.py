"""Is each element of the beyond recipe worth keeping? One-factor ablations on the HOLDOUT.

Each variant is the resnet recipe (a :class:`~fer_utils.training.config.RunConfig` of model ``resnet``) with one element switched
off (:data:`VARIANTS`), trained from the same seed, so every variant holds out the same faces
of train. Test is never scored here (``train_run(score_test=False)``): choosing the recipe
is selection, and selection is on held-out data.

Each trained variant is scored on three views of the same holdout faces:

``as-is``     as RAF-DB gives them (colour web photos)
``gray``      grayscale (luminance in all three channels)
``gray48``    grayscale at FER2013's 48x48, scaled back up to the model's side (bilinear)

(:func:`fer_utils.apply.evaluate.view`, also ``fer evaluate --view``.)

The last two stand in for "faces of other origins" (posed, grayscale, low resolution) that we
cannot train or test on here; they measure what the gray/low-resolution augmentation is for,
not robustness in general. Each variant is compared with ``baseline`` on the same faces by
McNemar's exact test and a paired bootstrap interval of the accuracy difference. With one
seed and ~1,200 holdout faces a difference under ~2.5 points is within noise: the table says
which differences are resolved (p < 0.05), nothing more.
"""

from __future__ import annotations

from pathlib import Path

from fer_utils.atomic import atomic_write_json
from fer_utils.errors import ConfigError
from fer_utils.apply.evaluate import view
from fer_utils.training.scoring import score

#: The views each variant is scored on (the ablation's three; ``loose`` came after it).
VIEWS = ("as-is", "gray", "gray48")

#: name -> the recipe's changes. ``baseline`` is the recipe as it stands.
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "no_mix": {"mix_prob": 0.0},  # no MixUp / CutMix
    "no_balance": {"balance": "none"},  # no class-balanced loss weights
    "no_gray_lowres": {"gray_prob": 0.0, "lowres_prob": 0.0},  # no other-origin augmentation
    "no_smoothing": {"label_smoothing": 0.0},
    "no_erase": {"erase_prob": 0.0},
}


def check_variants(names) -> list[str]:
    names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise ConfigError(f"variants {unknown or names}: expected some of {', '.join(VARIANTS)}")
    return ["baseline"] + [n for n in names if n != "baseline"]


def run_ablation(data, out_dir, base, variants=tuple(VARIANTS), *, verbose: bool = True) -> dict:
    """Train each variant of ``base`` into ``out_dir/<variant>`` (resuming; a finished one is not
    trained again) by the one trainer, score it on the holdout views, compare it with
    ``baseline``; write ``out_dir/ablation.json`` and return it. ``base``: a RunConfig of model
    ``resnet`` (its ``data`` is set to ``data``'s fingerprint)."""
    from fer_utils.training.rundir import read_metrics
    from fer_utils.training.scoring import predict_probs
    from fer_utils.training.trainer import train_run
    from fer_utils.data.datasets import stratified_split
    from fer_utils.models.registry import load_model
    from fer_utils.training.rundir import model_file
    from fer_utils.stats import contingency, mcnemar, paired_bootstrap

    out_dir = Path(out_dir)
    names = check_variants(variants)
    base = base.replace(data=data.fingerprint)
    _, held = stratified_split(data.y_train, base.val_fraction, base.seed)
    x_val, y_val = data.x_train[held], data.y_train[held]
    views = {v: view(x_val, v) for v in VIEWS}
    rows, correct = {}, {}
    for name in names:
        cfg = base.replace(**VARIANTS[name])
        train_run(out_dir / name, cfg, data, verbose=verbose, score_test=False)
        metrics = read_metrics(out_dir / name)
        model, _ = load_model(model_file(out_dir / name, cfg.epochs))
        row = {"changes": VARIANTS[name], "epochs": cfg.epochs, "train_seconds": metrics["cost"]["train_seconds"]}
        for v, xv in views.items():
            pred = predict_probs(model, xv).argmax(1)
            s = score(y_val, pred, tuple(data.class_names))
            row[v] = {k: s[k] for k in ("accuracy", "ci95", "mean_class_accuracy", "n")}
            correct[(name, v)] = pred == y_val
        rows[name] = row
        if verbose:
            print(f"[ablation] {name}: " + ", ".join(f"{v} {row[v]['accuracy']:.4f}" for v in VIEWS), flush=True)
    for name in names[1:]:
        for v in VIEWS:
            a, b = correct[(name, v)], correct[("baseline", v)]
            t = contingency(a, b)
            rows[name][v]["vs_baseline"] = {"difference": float(a.mean() - b.mean()),
                                            "p_mcnemar": mcnemar(t["a_only"], t["b_only"])["p_exact"],
                                            "bootstrap95": [paired_bootstrap(a, b)[k] for k in ("low", "high")]}
    result = {"base": base.to_dict(), "seed": base.seed, "holdout_faces": int(len(y_val)), "data": data.fingerprint,
              "views": list(VIEWS), "variants": rows}
    atomic_write_json(out_dir / "ablation.json", result)
    return result


def format_ablation(result: dict) -> str:
    """The ablation as a text table: accuracy per view, and the paired difference to baseline."""
    lines = [f"Ablation of the beyond recipe: seed {result['seed']}, {result['holdout_faces']} holdout faces, "
             f"{result['base']['epochs']} epochs; difference to baseline (McNemar p)"]
    lines.append(f"{'variant':<16}" + "".join(f"{v:>26}" for v in result["views"]))
    for name, row in result["variants"].items():
        cells = []
        for v in result["views"]:
            r = row[v]
            d = r.get("vs_baseline")
            cells.append(f"{r['accuracy']:.4f}" + (f" {d['difference']:+.4f} (p {d['p_mcnemar']:.2f})" if d else " " * 18))
        lines.append(f"{name:<16}" + "".join(f"{c:>26}" for c in cells))
    return "\n".join(lines)
