"""Two models face for face on each set's HELD-OUT faces: the selection step between runs
trained on different data (issue 26: which model ships).

    python benchmarks/mixture/holdout.py MODEL_A MODEL_B --data raf-basic.zip --data fer2013.zip [--view V] [--json OUT]

The held-out faces are the seeded, stratified 10% of each set's train split that every holdout
run of these sets (given in this order, seed 0) kept out of training
(:func:`fer_utils.training.trainer.holdout_split`): a run on RAF-DB alone and a run on RAF-DB and
FER2013 hold out the same 1,226 RAF-DB faces, and a model that never saw FER2013 has never seen
any of its faces. Test splits are not touched. Models are named as for ``fer compare`` (a run
id of the store, ``shipped``, a .keras file). Prints each model's accuracy (Wilson 95%) and mean
class accuracy per set and McNemar's exact test on the faces where they disagree. ``--view``:
the held-out faces seen as ``fer evaluate --view`` sees them (e.g. ``loose``, loosely framed).

The rule set before the 40-epoch mixture was scored (the issue's rule, applied on held-out
faces): the mixture replaces the shipped model when its RAF-DB held-out accuracy is within one
point of the shipped model's and it is better on FER2013's held-out faces.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
from pathlib import Path


def held_out_sets(paths, image_size: int, seed: int = 0) -> list[tuple[str, object]]:
    """[(set name, Dataset whose test split is that set's held-out faces)] for the sets ``paths``."""
    import numpy as np

    from fer_utils.data.mixture import load_many, names_of, sources_of
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import holdout_split

    data = load_many(paths, image_size)
    _, held = holdout_split(types.SimpleNamespace(val_fraction=RunConfig.val_fraction, seed=seed), data)
    src = sources_of(data, "train")[held]
    names = names_of(data) or (Path(str(paths[0])).stem,)
    out = []
    for s, name in enumerate(names):
        idx = held[src == s]
        out.append((name, dataclasses.replace(data, x_test=data.x_train[idx], y_test=data.y_train[idx],
                                              names_test=[data.names_train[i] for i in idx],
                                              source_test=np.full(len(idx), s))))
    return out


def main(argv=None) -> int:
    from fer_utils.apply.evaluate import VIEWS, evaluate, load_predictor, pair

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_a")
    ap.add_argument("model_b")
    ap.add_argument("--data", action="append", required=True, help="a data set, in the runs' order (give it again for more)")
    ap.add_argument("--seed", type=int, default=0, help="the runs' seed (it seeds the holdout)")
    ap.add_argument("--view", default="as-is", choices=VIEWS, help="how the faces are seen (fer evaluate --view; default as-is)")
    ap.add_argument("--json", help="also write the numbers there")
    args = ap.parse_args(argv)
    a, b = load_predictor(args.model_a), load_predictor(args.model_b)
    if a.load_size != b.load_size:
        print(f"the models want {a.load_size}px and {b.load_size}px faces; compare models of one input size", file=sys.stderr)
        return 2
    out = {"model_a": args.model_a, "model_b": args.model_b, "seed": args.seed, "sets": {}}
    if args.view != "as-is":
        out["view"] = args.view
    for name, ds in held_out_sets(args.data, a.load_size, args.seed):
        ra, rb = evaluate(a, ds, view_name=args.view), evaluate(b, ds, view_name=args.view)
        c = pair(ra, rb)
        row = {"faces": ra["n"], "a": {k: ra[k] for k in ("accuracy", "ci95", "mean_class_accuracy", "correct")},
               "b": {k: rb[k] for k in ("accuracy", "ci95", "mean_class_accuracy", "correct")},
               "contingency": c["contingency"], "mcnemar": c["mcnemar"], "difference": c["difference"]}
        out["sets"][name] = row
        print(f"{name} held out ({row['faces']} faces): A {ra['accuracy']:.4f} ({ra['ci95'][0]:.4f}-{ra['ci95'][1]:.4f}), "
              f"mean class {ra['mean_class_accuracy']:.4f}; B {rb['accuracy']:.4f} ({rb['ci95'][0]:.4f}-{rb['ci95'][1]:.4f}), "
              f"mean class {rb['mean_class_accuracy']:.4f}; B - A {100 * (rb['accuracy'] - ra['accuracy']):+.1f} points, "
              f"A only {c['contingency']['a_only']}, B only {c['contingency']['b_only']}, McNemar p {c['mcnemar']['p_exact']:.2g}")
    if args.json:
        from fer_utils.atomic import atomic_write_json

        atomic_write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
