"""Train one configuration, epoch by epoch, resumably (``model.fit`` is the loop).

Determinism. The weights start from ``seed``; before every epoch the shuffle order and the
augmentation's random stream are re-derived from ``(seed, epoch)`` only. So the first E epochs
of a longer run ARE the E-epoch run, and a run resumed from its checkpoint continues exactly
as if it had never stopped. (On CPU; TensorFlow's op determinism is switched on.)

Files. A run directory's files (config, history, checkpoint, kept models, metrics) are named,
written and read by :mod:`fer_utils.training.rundir` only; this module trains. Each file is written
atomically; an epoch ends in three steps (next checkpoint, history row, commit: see
:func:`fer_utils.training.rundir.save_checkpoint`), so a kill at any instant leaves a run that resumes
with no gap and no duplicate epoch. A call that fails before its
first epoch finishes removes the run folder if (and only if) that call created it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fer_utils.training import rundir
from fer_utils.atomic import atomic_save_model
from fer_utils.training.config import RunConfig
from fer_utils.data.datasets import Dataset, stratified_split
from fer_utils.errors import ConfigError, RunStoreError
from fer_utils.training.rundir import HISTORY_COLUMNS, read_history  # noqa: F401  (re-exported: the history's columns and reader)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (0-based) of a run seeded ``seed``: depends on both only."""
    return int(np.random.default_rng([int(seed), int(epoch), 0xE90C]).integers(0, 2**31 - 1))


def split_for(cfg: RunConfig, data: Dataset):
    """(x_train, y_train, x_val, y_val, x_test, y_test) for the run's selection protocol.

    ``test`` (the report's): validate on the test split. ``holdout``: a stratified, seeded
    ``val_fraction`` of train is held out for validation; the test split is used once per
    evaluation at the end.
    """
    if cfg.selection == "test":
        return data.x_train, data.y_train, data.x_test, data.y_test, data.x_test, data.y_test
    keep, held = stratified_split(data.y_train, cfg.val_fraction, cfg.seed)
    return (data.x_train[keep], data.y_train[keep], data.x_train[held], data.y_train[held], data.x_test, data.y_test)


def _batches(x, y, batch_size, num_classes, order=None):
    import keras

    class Batches(keras.utils.PyDataset):
        """Batches in a fixed order, one-hot labels; x stays uint8 (the model rescales)."""

        def __init__(self):
            super().__init__()
            self.order = np.arange(len(x)) if order is None else order

        def __len__(self):
            return math.ceil(len(self.order) / batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            idx = np.sort(idx) if order is None else idx
            return x[idx], np.eye(num_classes, dtype="float32")[y[idx]]

    return Batches()


def final_row(row: dict) -> dict:
    """The report's columns from a history row; Discrepancy = accuracy - val_accuracy."""
    return {
        "Loss": row["loss"],
        "Accuracy": row["accuracy"],
        "Val_loss": row["val_loss"],
        "Val_accuracy": row["val_accuracy"],
        "Discrepancy": row["accuracy"] - row["val_accuracy"],
    }


def evaluate(model, x, y, class_names, batch_size=256) -> dict:
    """Loss, accuracy, confusion matrix (rows = true class) and per-class accuracy.

    The loss is the cross-entropy taken from the logits (in float64), as training takes it
    (:func:`fer_utils.models.report_cnn.softmax_crossentropy`), so a confidently wrong model's loss is not
    capped by clipping its probabilities; a model without the report's ``predictions`` Dense
    layer falls back to the probabilities, clipped at 1e-7."""
    import keras

    k = len(class_names)
    head = next((layer for layer in model.layers if layer.name == "predictions" and isinstance(layer, keras.layers.Dense)), None)
    if head is not None:
        both = keras.Model(model.inputs, [head.input, model.outputs[0]])
        feats, probs = both.predict(_batches(x, y, batch_size, k), verbose=0)
        w, b = (np.asarray(keras.ops.convert_to_numpy(v), np.float64) for v in (head.kernel, head.bias))
        logits = np.asarray(feats, np.float64) @ w + b
        top = logits.max(1, keepdims=True)
        log_z = (top + np.log(np.exp(logits - top).sum(1, keepdims=True)))[:, 0]
        loss = float(np.mean(log_z - logits[np.arange(len(y)), y]))
    else:
        probs = model.predict(_batches(x, y, batch_size, k), verbose=0)
        loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))
    pred = np.asarray(probs).argmax(1)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else float("nan")) for i, c in enumerate(class_names)}
    valid = [v for v in per_class.values() if not math.isnan(v)]
    return {
        "loss": loss,
        "accuracy": float((pred == y).mean()),
        "mean_class_accuracy": float(np.mean(valid)) if valid else float("nan"),
        "per_class_accuracy": per_class,
        "confusion": cm.tolist(),
        "class_names": list(class_names),
        "n": int(len(y)),
    }


def train_run(
    run_dir,
    cfg: RunConfig,
    data: Dataset,
    epochs: int,
    *,
    keep_epochs=(),
    verbose: bool = True,
    stop_after=None,
) -> list[dict]:
    """Bring the run in ``run_dir`` to ``epochs`` finished epochs; return its history rows.

    Already-finished epochs are never trained again: asking for fewer epochs than the run has
    costs nothing, asking for more continues from the checkpoint. ``keep_epochs`` lists epoch
    counts whose model is kept (``model-eNNNN.keras``) and evaluated on the test split, e.g.
    every row of Table 2. ``stop_after`` (tests only) stops after that many new epochs.
    """
    from fer_utils.models.report_cnn import feature_map_sizes

    # Everything that can be checked is checked before the run folder exists.
    if data.fingerprint != cfg.data:
        raise ConfigError(f"run config is for data {cfg.data[:12]}, but the data set given is {data.fingerprint[:12]} ({data.source})")
    if data.image_size != cfg.image_size:
        raise ConfigError(f"run config wants {cfg.image_size}px images, the data set was loaded at {data.image_size}px")
    if epochs < 1:
        raise ConfigError(f"epochs {epochs!r}: expected 1 or more")
    feature_map_sizes(cfg.depth, cfg.image_size)  # a depth too deep for the image size fails here
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunStoreError(f"{run_dir}: is a file, not a run folder; choose another --run-dir or move that file away")
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # folders this call will make
    try:
        return _train_locked(run_dir, cfg, data, epochs, keep_epochs, verbose, stop_after)
    except BaseException:
        if created and run_dir.is_dir() and not (run_dir / rundir.HISTORY).exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # ours alone: this call made the folder, no epoch finished
            for parent in created[1:]:  # and the empty parents it made (rmdir: never one another run filled)
                try:
                    parent.rmdir()
                except OSError:
                    break
        raise


def _train_locked(run_dir, cfg, data, epochs, keep_epochs, verbose, stop_after):
    from fer_utils.training import backend
    from fer_utils.models.report_cnn import augmentation_layer, build_model

    keep = sorted({int(e) for e in keep_epochs if int(e) <= epochs} | {int(epochs)})
    with rundir.locked(run_dir):
        stored = rundir.read_config(run_dir)
        if stored is None:
            rundir.write_config(run_dir, cfg.to_dict())
        elif stored != cfg.to_dict():
            raise RunStoreError(f"{run_dir / rundir.CONFIG}: holds a different configuration than {cfg.run_id}; "
                                f"choose another --run-dir or move that folder away")
        rows = rundir.read_history(run_dir)
        metrics = rundir.read_metrics(run_dir)
        missing_keep = [e for e in keep if e <= len(rows) and str(e) not in metrics["evaluations"]]
        if len(rows) >= epochs and not missing_keep:
            return rows[:epochs]

        x_tr, y_tr, x_val, y_val, x_te, y_te = split_for(cfg, data)
        k = data.num_classes
        backend.make_deterministic()
        if rows:
            model = rundir.load_checkpoint(run_dir, len(rows), math.ceil(len(y_tr) / cfg.batch_size))
        else:
            model = build_model(cfg.depth, cfg.image_size, k, lr=cfg.lr, augment=cfg.augment, class_names=data.class_names, seed=cfg.seed)
        aug = augmentation_layer(model)
        val_data = _batches(x_val, y_val, max(cfg.batch_size, 256), k)
        if verbose and len(rows) < epochs:
            what = f"resuming at epoch {len(rows) + 1}" if rows else "new run"
            print(f"[{cfg.run_id}] {what}: {len(y_tr)} train / {len(y_val)} val images, "
                  f"{epochs} epochs, lr={cfg.lr:g} depth={cfg.depth} batch={cfg.batch_size}", flush=True)
        trained = 0
        for epoch in range(len(rows), epochs):
            if stop_after is not None and trained >= stop_after:
                break
            t0 = time.perf_counter()
            es = epoch_seed(cfg.seed, epoch)
            if aug is not None:
                aug.reseed(es)
            order = np.random.default_rng(es).permutation(len(y_tr))
            hist = model.fit(
                _batches(x_tr, y_tr, cfg.batch_size, k, order),
                validation_data=val_data,
                initial_epoch=epoch,
                epochs=epoch + 1,
                verbose=0,
                shuffle=False,
            ).history
            secs = time.perf_counter() - t0
            row = {"epoch": epoch + 1, **{m: float(hist[m][-1]) for m in HISTORY_COLUMNS[1:5]}, "seconds": secs}
            rundir.save_checkpoint(run_dir, model)  # weights first, then the row, then the commit (rundir)
            if epoch + 1 in keep:
                atomic_save_model(model, rundir.model_file(run_dir, epoch + 1))
            rows.append(row)
            rundir.write_history(run_dir, rows)
            rundir.commit_checkpoint(run_dir)
            trained += 1
            if verbose:
                print(
                    f"[{cfg.run_id}] epoch {epoch + 1}/{epochs} - loss {row['loss']:.4f} - accuracy {row['accuracy']:.4f}"
                    f" - val_loss {row['val_loss']:.4f} - val_accuracy {row['val_accuracy']:.4f} - {secs:.1f}s"
                    f" ({len(y_tr) / max(secs, 1e-9):.0f} img/s)",
                    flush=True,
                )
            if epoch + 1 in keep:
                _record_evaluation(run_dir, metrics, epoch + 1, row, model, x_te, y_te, data.class_names, cfg)
        for e in keep:
            if e <= len(rows) and str(e) not in metrics["evaluations"]:
                path = rundir.model_file(run_dir, e)
                m = rundir.load_keras(path) if path.exists() else (model if e == len(rows) else None)
                if m is not None:
                    _record_evaluation(run_dir, metrics, e, rows[e - 1], m, x_te, y_te, data.class_names, cfg)
        return rows[:epochs]


def git_commit(folder=None) -> str:
    """The commit of the project checkout (``folder``, default the project's), "+ dirty" noted."""
    from fer_utils import paths

    folder = Path(folder) if folder is not None else paths.PROJECT_DIR
    try:
        sha = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown (not a git checkout, or no commit yet)"
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git is not installed)"


def trained_with() -> dict:
    """Where epochs are being trained (provenance): backend, versions, machine, the code's commit,
    the device (``cpu`` or ``gpu``, its name and, for a CPU, the flags that pick its kernels) and
    the matmul precision (JAX's ``jax_default_matmul_precision``, TensorFlow's TF32 switch):
    backends and CPUs round differently, so a table must say which one made it."""
    import platform

    import keras

    from fer_utils.training import backend

    info = {"backend": keras.backend.backend(), "keras": keras.__version__, "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs", "commit": git_commit()}
    try:
        info.update(backend.device_info())
        info["matmul_precision"] = backend.matmul_precision()
        if backend.tf32_enabled() is not None:
            info["tf32_execution"] = backend.tf32_enabled()
        onednn = backend.onednn_enabled()
        if onednn is not None:  # oneDNN and Eigen round differently: a resumed run should not mix them
            info["onednn"] = onednn
    except Exception:  # noqa: BLE001 - provenance is best effort
        pass
    return info


def _record_evaluation(run_dir, metrics, epoch, row, model, x_te, y_te, class_names, cfg):
    test = evaluate(model, x_te, y_te, class_names)
    metrics["evaluations"][str(epoch)] = {"final_row": final_row(row), "test": test, "trained_with": trained_with()}
    metrics["run_id"] = cfg.run_id
    rundir.write_metrics(run_dir, metrics)


def print_final(final: dict, file=None) -> None:
    file = file or sys.stdout  # looked up at call time (notebooks and tests replace it)
    cols = ("Loss", "Accuracy", "Val_loss", "Val_accuracy", "Discrepancy")
    print("\t".join(cols), file=file)
    print("\t".join(f"{final[c]:.4f}" for c in cols), file=file)
