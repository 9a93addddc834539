"""Train the beyond recipe (fer_utils.models.resnet) on one GPU under JAX within a time budget.

    KERAS_BACKEND=jax python benchmarks/gpu_beyond.py --data raf-basic.zip --out OUT --budget-s 480

Everything stays on the device: the faces are uint8 arrays in device memory, each epoch is one
jitted ``lax.scan`` over its batches (gather, MixUp/CutMix via ``fer_utils.models.resnet.mix_batch``,
the model's augmentation layer, forward, backward, AdamW), so the host only launches epochs.
The learning rate is an input of the step (linear warm-up for ``warmup_epochs``, then cosine),
so the epoch count is decided AFTER the first two epochs were timed, without recompiling:
``epochs = (budget left - reserve) / (seeds x measured epoch time)``; seeds are dropped (from
the end) when fewer than ``--min-epochs`` would fit. Selection on a 10% holdout of train; the
test split is scored once per seed at the end (plain and flip TTA), then the seed ensemble.
Writes per seed a run folder (config.json, history.csv, metrics.json, model-eNNNN.keras) and
``summary.json``; the last line is ``RESULT ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="RAF-DB folder or zip (any layout the loader reads)")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget for the whole script (default 480)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=None, help="peak lr (default: the config's, scaled by batch/128)")
    ap.add_argument("--widths", default=None, help="e.g. 32,64,128,256")
    ap.add_argument("--blocks", default=None, help="e.g. 1,1,1,1")
    ap.add_argument("--min-epochs", type=int, default=20)
    ap.add_argument("--max-epochs", type=int, default=400)
    ap.add_argument("--reserve-s", type=float, default=25.0, help="kept for evaluation and saving per seed")
    ap.add_argument("--subset", type=int, default=0, help="use only this many train faces (CPU smoke tests)")
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import keras

    from fer_utils.data import datasets
    from fer_utils.models.registry import save_model
    from fer_utils.models.resnet import build_resnet, class_weights, flops_per_image, mix_batch
    from fer_utils.stats import wilson_interval
    from fer_utils.training import rundir
    from fer_utils.training.config import RunConfig
    from fer_utils.training.scoring import predict_probs, score, scores

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    base = RunConfig(data="", model="resnet", image_size=args.image_size, batch_size=args.batch_size)
    changes = {}
    if args.widths:
        changes["widths"] = tuple(int(v) for v in args.widths.split(","))
    if args.blocks:
        changes["blocks"] = tuple(int(v) for v in args.blocks.split(","))
    changes["lr"] = args.lr if args.lr else base.lr * args.batch_size / 128
    base = base.replace(**changes)

    ds = datasets.load(args.data, image_size=args.image_size, progress=False)
    base = base.replace(data=ds.fingerprint)
    print(f"data: {ds.describe()} ({time.perf_counter() - T_START:.0f}s)", flush=True)
    device = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    k, B = ds.num_classes, base.batch_size
    names = ds.class_names

    def prepare(seed):
        keep, held = datasets.stratified_split(ds.y_train, base.val_fraction, seed)
        if args.subset:
            keep = keep[: args.subset]
        return keep, held

    def adamw(tv, grads, m, v, t, lr, wd, b1=0.9, b2=0.999, eps=1e-7):
        new_tv, new_m, new_v = [], [], []
        for w, g, mi, vi in zip(tv, grads, m, v):
            mi = b1 * mi + (1 - b1) * g
            vi = b2 * vi + (1 - b2) * g * g
            mh, vh = mi / (1 - b1**t), vi / (1 - b2**t)
            decay = wd * w if w.ndim > 1 else 0.0  # kernels only: not BN scales/offsets, not biases
            new_tv.append(w - lr * (mh / (jnp.sqrt(vh) + eps) + decay))
            new_m.append(mi)
            new_v.append(vi)
        return new_tv, new_m, new_v

    def make_epoch_fn(model):
        """One jitted epoch for every seed (same shapes: compiled once; the model is only its structure)."""
        def loss_fn(tv, ntv, x, y, w):
            probs, ntv = model.stateless_call(tv, ntv, x, training=True)
            ysm = y * (1 - base.label_smoothing) + base.label_smoothing / k
            ce = -jnp.sum(ysm * jnp.log(jnp.clip(probs, 1e-7, 1.0)), axis=-1)
            return jnp.mean(ce * w), (ntv, probs)

        def step(carry, inp):
            tv, ntv, m, v, t, cw = carry
            idx, lr, key = inp
            x = xs[idx].astype(jnp.float32)
            yi = ys[idx]
            y = jax.nn.one_hot(yi, k)
            w = cw[yi]
            k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
            cut = jax.random.uniform(k1) < 0.5
            lam = jnp.where(cut, jax.random.beta(k2, 1.0, 1.0), jax.random.beta(k3, 0.2, 0.2))
            perm = jax.random.permutation(k4, B)
            cy, cx = jax.random.uniform(k5, (2,))
            xm, ymix, lam_eff = mix_batch(x, y, perm, lam, cut, cy, cx)
            on = jax.random.uniform(k6) < base.mix_prob
            x = jnp.where(on, xm, x)
            y = jnp.where(on, ymix, y)
            w = jnp.where(on, lam_eff * w + (1 - lam_eff) * w[perm], w)
            (loss, (ntv, probs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv, x, y, w)
            t = t + 1
            tv, m, v = adamw(tv, grads, m, v, t, lr, base.weight_decay)
            acc = jnp.mean(jnp.argmax(probs, -1) == jnp.argmax(y, -1))
            return (tv, ntv, m, v, t, cw), (loss, acc)

        @jax.jit
        def epoch(state, idx, lrs, keys):
            return jax.lax.scan(step, state, (idx, lrs, keys))

        return epoch

    xs = jax.device_put(jnp.asarray(ds.x_train))
    ys = jax.device_put(jnp.asarray(ds.y_train))

    def lr_at(step, steps_per_epoch, total_epochs):
        warm = base.warmup_epochs * steps_per_epoch
        if step < warm:
            return base.lr * (step + 1) / warm
        total = max(total_epochs * steps_per_epoch - warm, 1)
        return 0.5 * base.lr * (1 + math.cos(math.pi * min(step - warm, total) / total))

    summary = {"device": device, "backend": keras.backend.backend(), "config": base.to_dict(), "seeds": {}, "data": ds.describe()}
    total_epochs = None
    epoch_seconds = None
    test_probs = {}
    for si, seed in enumerate(seeds):
        if total_epochs is not None and si >= summary.get("seeds_planned", len(seeds)):
            break
        cfg = base.replace(seed=seed)
        keep, held = prepare(seed)
        steps = len(keep) // B
        if steps < 1:
            raise SystemExit(f"only {len(keep)} train faces for batch {B}")
        model = build_resnet(cfg, k, class_names=names)
        epoch_fn = epoch_fn if si else make_epoch_fn(model)
        cw = jnp.asarray(class_weights(ds.y_train[keep], k, cfg.balance))
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        zeros = [jnp.zeros_like(w) for w in tv]
        state = (tv, ntv, zeros, [jnp.zeros_like(w) for w in tv], jnp.asarray(0, jnp.int32), cw)
        rng = np.random.default_rng([seed, 0xBE70])
        key = jax.random.PRNGKey(seed)
        rows, t_seed, epoch = [], time.perf_counter(), 0
        keep_dev = jnp.asarray(keep)

        def holdout_eval():
            for var, val in zip(model.trainable_variables, state[0]):
                var.assign(jnp.copy(val))  # a copy: Keras may donate its own buffers
            for var, val in zip(model.non_trainable_variables, state[1]):
                var.assign(jnp.copy(val))  # a copy: Keras may donate its own buffers
            s = scores(model, ds.x_train[held], ds.y_train[held], names)
            return s["loss"], s["accuracy"]

        while True:
            if total_epochs is not None and epoch >= total_epochs:
                break
            t0 = time.perf_counter()
            order = keep_dev[jnp.asarray(rng.permutation(len(keep))[: steps * B])].reshape(steps, B)
            planned = total_epochs if total_epochs is not None else base.warmup_epochs + 1000
            lrs = jnp.asarray([lr_at(epoch * steps + i, steps, planned) for i in range(steps)], jnp.float32)
            key, sub = jax.random.split(key)
            state, (losses, accs) = epoch_fn(state, order, lrs, jax.random.split(sub, steps))
            loss = float(losses.mean())
            secs = time.perf_counter() - t0
            val_loss, val_acc = holdout_eval() if (epoch % 5 == 4 or total_epochs is None or epoch == (total_epochs or 0) - 1) else (math.nan, math.nan)
            rows.append({"epoch": epoch + 1, "loss": loss, "accuracy": float(accs.mean()), "val_loss": val_loss, "val_accuracy": val_acc, "seconds": secs})
            print(f"[seed {seed}] epoch {epoch + 1}: loss {loss:.4f} holdout {val_acc:.4f} {secs:.2f}s ({steps * B / secs:.0f} img/s)", flush=True)
            epoch += 1
            if total_epochs is None and epoch == base.warmup_epochs:
                epoch_seconds = rows[-1]["seconds"]  # the second epoch: compiled, steady
                left = args.budget_s - (time.perf_counter() - T_START)
                n = len(seeds)
                while n > 1 and (left - n * args.reserve_s) / (n * epoch_seconds) < args.min_epochs:
                    n -= 1
                total_epochs = int(min(args.max_epochs, max(base.warmup_epochs + 1,
                                   (left - n * args.reserve_s + base.warmup_epochs * epoch_seconds) / (n * epoch_seconds))))
                summary["seeds_planned"] = n
                print(f"budget: {left:.0f}s left, epoch {epoch_seconds:.2f}s -> {total_epochs} epochs x {n} seed(s)", flush=True)
        train_s = time.perf_counter() - t_seed
        holdout_eval()  # weights into the Keras model
        cfg = cfg.replace(epochs=total_epochs)
        run = out / cfg.run_id  # the run store's format: fer report and fer runs read it like any run
        rundir.write_config(run, cfg.to_dict())
        rundir.write_history(run, rows)
        save_model(model, rundir.model_file(run, total_epochs), class_names=names)
        x_val, y_val = ds.x_train[held], ds.y_train[held]
        ev = {"holdout": scores(model, x_val, y_val, names), "holdout_tta": scores(model, x_val, y_val, names, "flip"),
              "test": scores(model, ds.x_test, ds.y_test, names), "test_tta": scores(model, ds.x_test, ds.y_test, names, "flip"),
              "trained_with": {"backend": "jax", "device": device, "keras": keras.__version__}}
        test_probs[seed] = predict_probs(model, ds.x_test, "flip")
        n_img = steps * B * total_epochs
        cost = {"parameters": int(model.count_params()), "flops_per_image": flops_per_image(model), "epochs": total_epochs,
                "train_seconds": train_s, "images_per_second": n_img / train_s, "steady_epoch_seconds": epoch_seconds,
                "steady_images_per_second": steps * B / epoch_seconds, "machine": device}
        rundir.write_metrics(run, {"run_id": run.name, "model": cfg.model, "evaluations": {str(total_epochs): ev}, "cost": cost})
        summary["seeds"][seed] = {"run": run.name, "cost": cost, **{key_: {m: ev[key_][m] for m in ("accuracy", "ci95", "mean_class_accuracy")}
                                                                     for key_ in ("holdout", "holdout_tta", "test", "test_tta")}}
        print(f"[seed {seed}] test {ev['test']['accuracy']:.4f} (TTA {ev['test_tta']['accuracy']:.4f}), mean class "
              f"{ev['test']['mean_class_accuracy']:.4f}; holdout {ev['holdout']['accuracy']:.4f}; {train_s:.0f}s", flush=True)
    done = list(summary["seeds"].values())
    for key_ in ("holdout", "test", "test_tta"):
        for m in ("accuracy", "mean_class_accuracy"):
            vals = [d[key_][m] for d in done]
            summary[f"mean_{key_}_{m}"] = float(np.mean(vals))
            summary[f"std_{key_}_{m}"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    if len(test_probs) > 1:
        ens = score(ds.y_test, np.mean(list(test_probs.values()), axis=0).argmax(1), tuple(names))
        summary["ensemble_tta"] = {m: ens[m] for m in ("accuracy", "ci95", "mean_class_accuracy", "per_class_accuracy", "confusion")}
    summary["wall_seconds"] = time.perf_counter() - T_START
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    lo, hi = wilson_interval(round(summary["mean_test_accuracy"] * len(ds.y_test)), len(ds.y_test))
    print(f"RESULT seeds={len(done)} epochs={total_epochs} test_acc_mean={summary['mean_test_accuracy']:.4f} "
          f"(one-seed CI ~{lo:.4f}-{hi:.4f}) mean_class_mean={summary['mean_test_mean_class_accuracy']:.4f} "
          f"tta_mean={summary['mean_test_tta_accuracy']:.4f} ensemble_tta={summary.get('ensemble_tta', {}).get('accuracy', float('nan')):.4f} "
          f"img_s={np.mean([d['cost']['steady_images_per_second'] for d in done]):.0f} wall_s={summary['wall_seconds']:.0f}", flush=True)


if __name__ == "__main__":
    main()
