"""How long the synthetic set takes to make, and how hard it is (the calibration).

The generator is tuned for the ``demo`` profile (72x72, 1,500 train / 500 test, batch 64, so
about 24 optimizer steps per epoch): the report's CNN (depth 4, lr 0.001) should land between
60 % and 90 % test accuracy after 3 epochs (clearly above the majority class, clearly not
solved), a linear softmax classifier on raw pixels clearly below it, depth 2 trained for 30
epochs should overfit (train accuracy well above test, validation loss rising late), and
lr 0.01 (depth 2, 2 epochs) should do clearly worse than lr 0.001, as in the report's Table 1.

    python benchmarks/bench_synthetic.py                 # all checks, demo size (a few minutes)
    python benchmarks/bench_synthetic.py --quick         # only generation, linear and depth 4

Ends with one line ``RESULT gen_seconds=... linear_acc=... cnn_acc=... overfit_gap=...
lr0.01_acc=... lr0.001_acc=...`` (the last three are ``nan`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def linear_accuracy(ds, epochs: int = 15, seed: int = 0) -> float:
    """Test accuracy of softmax regression on the flattened pixels / 255 (Adam, batch 64)."""
    import keras

    keras.utils.set_random_seed(seed)
    x_tr = ds.x_train.reshape(len(ds.x_train), -1).astype("float32") / 255
    x_te = ds.x_test.reshape(len(ds.x_test), -1).astype("float32") / 255
    model = keras.Sequential([keras.Input(x_tr.shape[1:]), keras.layers.Dense(ds.num_classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    y_tr = keras.utils.to_categorical(ds.y_train, ds.num_classes)
    y_te = keras.utils.to_categorical(ds.y_test, ds.num_classes)
    model.fit(x_tr, y_tr, batch_size=64, epochs=epochs, verbose=0)
    return float(model.evaluate(x_te, y_te, verbose=0)[1])


def cnn_run(ds, depth: int, epochs: int, lr: float = 1e-3, seed: int = 0, verbose: int = 0) -> dict:
    """Train the report's CNN (batch 64, augmentation on, shuffled with a fixed seed); return
    its Keras history (accuracy, loss, val_accuracy, val_loss per epoch; val = the test split)."""
    import keras

    from fer_utils.models.report_cnn import build_model

    model = build_model(depth=depth, input_size=ds.image_size, lr=lr, seed=seed)
    y_tr = keras.utils.to_categorical(ds.y_train, ds.num_classes)
    y_te = keras.utils.to_categorical(ds.y_test, ds.num_classes)
    hist = model.fit(ds.x_train, y_tr, batch_size=64, epochs=epochs, verbose=verbose, shuffle=True,
                     validation_data=(ds.x_test, y_te))
    return hist.history


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=1500)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--n-unlabelled", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=72)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3, help="epochs of the depth-4 run (demo: the report's 100)")
    p.add_argument("--overfit-epochs", type=int, default=30, help="epochs of the depth-2 overfit run (demo: the report's 1000)")
    p.add_argument("--lr-epochs", type=int, default=2, help="epochs of the learning-rate check (demo: the report's 50)")
    p.add_argument("--quick", action="store_true", help="skip the overfit and learning-rate checks")
    p.add_argument("--keep", type=Path, default=None, help="generate into this folder (kept) instead of a temporary one")
    p.add_argument("-v", "--verbose", action="store_true", help="print Keras' per-epoch lines")
    args = p.parse_args(argv)

    from fer_utils.data import datasets

    from fer_utils.data import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep if args.keep is not None else Path(tmp) / "synthetic"
        summary = synthetic.generate(out, args.n_train, args.n_test, args.n_unlabelled, seed=args.seed, progress=False)
        n = args.n_train + args.n_test + args.n_unlabelled
        gen = summary["seconds"]
        print(f"generation: {n} faces in {gen:.1f}s ({1000 * gen / n:.1f} ms/face)"
              + (" (reused an identical set)" if summary["reused"] else ""))
        ds = datasets.load(out, image_size=args.image_size, cache=False, progress=False, verbose=False)

    chance = float(np.bincount(ds.y_test).max() / len(ds.y_test))
    print(f"majority-class test accuracy (chance): {chance:.3f}")
    t0 = time.perf_counter()
    lin = linear_accuracy(ds)
    print(f"linear softmax on raw pixels, 15 epochs: test accuracy {lin:.3f} ({time.perf_counter() - t0:.0f}s)")
    t0 = time.perf_counter()
    h = cnn_run(ds, depth=args.depth, epochs=args.epochs, verbose=2 * args.verbose)
    cnn = h["val_accuracy"][-1]
    print(f"report CNN depth {args.depth}, lr 0.001, {args.epochs} epochs: test accuracy {cnn:.3f} "
          f"(per epoch {' '.join(f'{v:.3f}' for v in h['val_accuracy'])}; {time.perf_counter() - t0:.0f}s)")
    checks = {"CNN 60-90 %": 0.60 <= cnn <= 0.90, "linear >= 0.1 below CNN": lin <= cnn - 0.1}
    gap = lr_hi = lr_lo = float("nan")
    if not args.quick:
        t0 = time.perf_counter()
        h = cnn_run(ds, depth=2, epochs=args.overfit_epochs, verbose=2 * args.verbose)
        tr, te, vl = h["accuracy"][-1], h["val_accuracy"][-1], h["val_loss"]
        gap = tr - te
        best = int(np.argmin(vl))
        print(f"report CNN depth 2, lr 0.001, {args.overfit_epochs} epochs: train accuracy {tr:.3f}, test accuracy "
              f"{te:.3f} (gap {gap:+.3f}); val loss lowest {vl[best]:.3f} at epoch {best + 1}, last {vl[-1]:.3f} "
              f"({time.perf_counter() - t0:.0f}s)")
        checks["overfit gap >= 0.1"] = gap >= 0.1
        checks["val loss rises late"] = vl[-1] > vl[best] + 0.1 and best + 1 < args.overfit_epochs * 0.8
        accs = {}
        for lr in (0.01, 0.001):
            t0 = time.perf_counter()
            accs[lr] = cnn_run(ds, depth=2, epochs=args.lr_epochs, lr=lr, verbose=2 * args.verbose)["val_accuracy"][-1]
            print(f"report CNN depth 2, lr {lr:g}, {args.lr_epochs} epochs: test accuracy {accs[lr]:.3f} "
                  f"({time.perf_counter() - t0:.0f}s)")
        lr_hi, lr_lo = accs[0.01], accs[0.001]
        checks["lr 0.01 >= 0.1 below lr 0.001"] = lr_hi <= lr_lo - 0.1
    for name, ok in checks.items():
        print(f"check {name}: {'met' if ok else 'NOT met'}")
    print(f"calibration target: {'met' if all(checks.values()) else 'NOT met'}")
    print(f"RESULT gen_seconds={gen:.1f} linear_acc={lin:.3f} cnn_acc={cnn:.3f} overfit_gap={gap:.3f} "
          f"lr0.01_acc={lr_hi:.3f} lr0.001_acc={lr_lo:.3f}")


if __name__ == "__main__":
    main()
