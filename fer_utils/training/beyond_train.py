"""Train the beyond recipe (:mod:`fer_utils.models.resnet`) into a run directory of the project's
format, so the run can be published and read like the report's runs:

``config.json``   the :class:`~fer_utils.models.resnet.BeyondConfig` and the data fingerprint
``history.csv``   epoch, loss, accuracy, val_loss, val_accuracy, seconds (val = the HOLDOUT)
``metrics.json``  ``evaluations[<epochs>]``: holdout and test scores (accuracy, 95% interval,
                  mean class accuracy, per class, confusion matrix), plain and with flip TTA;
                  ``cost``: parameters, FLOPs per image, images/s, wall time, machine
``model-eNNNN.keras`` (+ ``.classes.json``) the final model

Selection is on the holdout (``val_fraction`` of train, stratified, seeded); the test split is
scored once, after the last epoch. A finished run is not trained again (its metrics are
returned). An interrupted one resumes: after every epoch the whole model (weights, AdamW state,
step count of the schedule) is saved atomically (:func:`fer_utils.training.rundir.save_checkpoint`) around that epoch's
history row, so a kill at any instant loses at most the epoch in flight, and the resumed run
trains the same epochs as an uninterrupted one (the checkpoint is removed once the final model
and the metrics are written). The loop is ``model.fit``, one epoch per call, with the shuffle
order, MixUp/CutMix draws and augmentation stream re-derived from (seed, epoch) before every
epoch; one process trains a run at a time (the run's lock).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

from fer_utils.training import rundir
from fer_utils.models.resnet import BeyondConfig, augmentation_layer, build_beyond, class_weights, flops_per_image, mix_batch, optimizer
from fer_utils.errors import RunStoreError
from fer_utils.apply.evaluate import score

HISTORY_COLUMNS = rundir.HISTORY_COLUMNS


def run_id(cfg: BeyondConfig, fingerprint: str) -> str:
    canon = json.dumps({"config": cfg.to_dict(), "data": fingerprint}, sort_keys=True, separators=(",", ":"))
    return f"beyond-e{cfg.epochs}-s{cfg.seed}-{hashlib.sha256(canon.encode()).hexdigest()[:12]}"


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.default_rng([int(seed), int(epoch), 0xBE70]).integers(0, 2**31 - 1))


def reseed(model, epoch_seed: int) -> None:
    """Restart every random stream inside the model from ``epoch_seed``: the augmentation
    layer's and each dropout layer's (a stream that ran on across epochs would not survive a
    checkpoint, so a resumed run would draw other masks)."""
    from keras import ops

    aug = augmentation_layer(model)
    if aug is not None:
        aug.reseed(epoch_seed)
    for i, layer in enumerate(model.layers):
        gen = getattr(layer, "seed_generator", None)
        if gen is not None and layer is not aug:
            gen.state.assign(ops.convert_to_tensor([(int(epoch_seed) + 7919 * (i + 1)) & 0x7FFFFFFF, 0], dtype=gen.state.dtype))


def _batches(x, y, w, batch_size, k, order=None, mix_prob=0.0, seed=0):
    import keras

    class Batches(keras.utils.PyDataset):
        """Float batches (MixUp/CutMix on ``mix_prob`` of them), soft labels, class weights."""

        def __init__(self):
            super().__init__()
            self.order = np.arange(len(x)) if order is None else order
            self.rng = np.random.default_rng([int(seed), 0x313])
            n = len(self)  # all draws up front: batch i's mixing depends on (seed, i) only
            self.draws = [(self.rng.random(), self.rng.random() < 0.5, self.rng.beta(1.0, 1.0), self.rng.beta(0.2, 0.2),
                           self.rng.random(), self.rng.random(), self.rng.permutation(batch_size)) for _ in range(n)]

        def __len__(self):
            return math.ceil(len(self.order) / batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            xb = x[idx].astype("float32")
            yb = np.eye(k, dtype="float32")[y[idx]]
            wb = w[y[idx]]
            u, cut, lam_cut, lam_mix, cy, cx, perm = self.draws[i]
            if u < mix_prob and len(idx) > 1:
                perm = perm[perm < len(idx)]
                lam = lam_cut if cut else lam_mix
                xb, yb, lam_eff = (keras.ops.convert_to_numpy(t) for t in mix_batch(xb, yb, perm, np.float32(lam), cut, np.float32(cy), np.float32(cx)))
                wb = lam_eff * wb + (1 - lam_eff) * wb[perm]
            return xb, yb, wb.astype("float32")

    return Batches()


def predict_probs(model, x, tta=None, batch_size=256) -> np.ndarray:
    def run(z):
        return np.concatenate([np.asarray(model.predict_on_batch(z[i : i + batch_size].astype("float32")))
                               for i in range(0, len(z), batch_size)])
    p = run(x)
    return (p + run(np.ascontiguousarray(x[:, :, ::-1]))) / 2.0 if tta == "flip" else p


def scores(model, x, y, class_names, tta=None) -> dict:
    """:func:`fer_utils.apply.evaluate.score` of ``model`` on (x, y), with the log loss."""
    p = predict_probs(model, x, tta)
    out = score(y, p.argmax(1), tuple(class_names))
    out["loss"] = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
    out["class_names"] = list(class_names)
    return out


def train_beyond(data, run_dir, cfg: BeyondConfig, *, verbose: bool = True, max_batches=None, stop_after=None,
                 score_test: bool = True) -> dict:
    """Train ``cfg`` on ``data`` (a :class:`~fer_utils.data.datasets.Dataset` at ``cfg.image_size``)
    into ``run_dir``, resuming from its checkpoint; return its ``metrics.json`` content.
    ``max_batches`` (tests and the speed benchmark) trains only that many batches per epoch;
    ``stop_after`` trains at most that many epochs in this call (then returns ``{}``: what a
    kill leaves, for the resume tests). ``score_test=False`` (ablations: selection) scores the
    holdout only; a run finished that way keeps no test scores."""
    if data.image_size != cfg.image_size:
        raise RunStoreError(f"the beyond config wants {cfg.image_size}px faces, the data set was loaded at {data.image_size}px; load it with image_size={cfg.image_size}")
    run_dir = Path(run_dir)
    stored = {"beyond": cfg.to_dict(), "data": data.fingerprint, "model": cfg.model}
    cfg_path = run_dir / rundir.CONFIG
    if cfg_path.exists() and rundir.read_config(run_dir) != stored:
        raise RunStoreError(f"{cfg_path}: holds another configuration; choose another run folder or move that one away")
    with rundir.locked(run_dir):
        if rundir.read_config(run_dir) is None:
            rundir.write_config(run_dir, stored)
        metrics = rundir.read_metrics(run_dir)
        if str(cfg.epochs) in metrics.get("evaluations", {}):
            return metrics
        return _train_locked(data, run_dir, cfg, verbose, max_batches, stop_after, score_test)


def _train_locked(data, run_dir, cfg, verbose, max_batches, stop_after, score_test) -> dict:
    import keras

    from fer_utils.training import backend
    from fer_utils.data.datasets import stratified_split
    from fer_utils.models.report_cnn import save_model
    from fer_utils.training.trainer import trained_with

    backend.make_deterministic()
    keep, held = stratified_split(data.y_train, cfg.val_fraction, cfg.seed)
    x_tr, y_tr, x_val, y_val = data.x_train[keep], data.y_train[keep], data.x_train[held], data.y_train[held]
    k = data.num_classes
    weights = class_weights(y_tr, k, cfg.balance)
    rows = rundir.read_history(run_dir)[: cfg.epochs]
    final = rundir.model_file(run_dir, cfg.epochs)
    steps = math.ceil(len(y_tr) / cfg.batch_size) if max_batches is None else min(max_batches, math.ceil(len(y_tr) / cfg.batch_size))
    if rows and len(rows) == cfg.epochs and final.exists():
        model = rundir.load_keras(final)  # killed while scoring: only the scores are missing
    elif rows:
        model = rundir.load_checkpoint(run_dir, len(rows), steps)
    else:
        model = build_beyond(cfg, k, class_names=data.class_names)
        model.compile(optimizer=optimizer(cfg, steps), loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                      metrics=["accuracy"])
    val = _batches(x_val, y_val, np.ones(k, np.float32), 256, k)
    if verbose and len(rows) < cfg.epochs:
        what = f"resuming at epoch {len(rows) + 1}" if rows else "new run"
        print(f"[beyond s{cfg.seed}] {what}: {len(y_tr)} train / {len(y_val)} holdout faces at {cfg.image_size}px, {cfg.epochs} epochs, "
              f"{model.count_params():,} parameters, {flops_per_image(model) / 1e6:.0f} MFLOP/image", flush=True)
    trained = 0
    for epoch in range(len(rows), cfg.epochs):
        if stop_after is not None and trained >= stop_after:
            return {}
        t0 = time.perf_counter()
        es = _epoch_seed(cfg.seed, epoch)
        reseed(model, es)
        order = np.random.default_rng(es).permutation(len(y_tr))[: None if max_batches is None else max_batches * cfg.batch_size]
        h = model.fit(_batches(x_tr, y_tr, weights, cfg.batch_size, k, order, cfg.mix_prob, es), validation_data=val,
                      initial_epoch=epoch, epochs=epoch + 1, verbose=0, shuffle=False).history
        secs = time.perf_counter() - t0
        rows.append({"epoch": epoch + 1, **{m: float(h[m][-1]) for m in HISTORY_COLUMNS[1:5]}, "seconds": secs})
        rundir.save_checkpoint(run_dir, model)  # weights, then the row, then the commit (fer_utils.training.rundir)
        rundir.write_history(run_dir, rows)
        rundir.commit_checkpoint(run_dir)
        trained += 1
        if verbose:
            r = rows[-1]
            print(f"[beyond s{cfg.seed}] epoch {epoch + 1}/{cfg.epochs} - loss {r['loss']:.4f} - holdout acc {r['val_accuracy']:.4f}"
                  f" - {secs:.1f}s ({len(order) / max(secs, 1e-9):.0f} img/s)", flush=True)
    if not final.exists() or trained:
        save_model(model, final, class_names=data.class_names)
    names = data.class_names
    ev = {
        "final_row": {"Loss": rows[-1]["loss"], "Accuracy": rows[-1]["accuracy"], "Val_loss": rows[-1]["val_loss"],
                      "Val_accuracy": rows[-1]["val_accuracy"], "Discrepancy": rows[-1]["accuracy"] - rows[-1]["val_accuracy"]},
        "holdout": scores(model, x_val, y_val, names), "holdout_tta": scores(model, x_val, y_val, names, cfg.tta),
        "trained_with": trained_with(),
    }
    if score_test:  # once per reported model
        ev["test"], ev["test_tta"] = scores(model, data.x_test, data.y_test, names), scores(model, data.x_test, data.y_test, names, cfg.tta)
    per_epoch = len(y_tr) if max_batches is None else min(len(y_tr), max_batches * cfg.batch_size)
    train_seconds = sum(r["seconds"] for r in rows)  # epochs only (loading, evaluation and any restart excluded)
    metrics = {"run_id": run_dir.name, "model": cfg.model, "evaluations": {str(cfg.epochs): ev},
               "cost": {"parameters": int(model.count_params()), "flops_per_image": flops_per_image(model),
                        "epochs": cfg.epochs, "train_seconds": train_seconds,
                        "images_per_second": per_epoch * len(rows) / max(train_seconds, 1e-9)}}
    rundir.write_metrics(run_dir, metrics)
    rundir.checkpoint_file(run_dir).unlink(missing_ok=True)  # the final model holds the same weights
    return metrics
