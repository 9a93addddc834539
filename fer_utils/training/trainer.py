"""The one trainer: any model's run, epoch by epoch, resumably (``model.fit`` is the loop).

Every family (:mod:`fer_utils.models.registry`) trains here, under one contract; what differs
between families (optimizer, batches, what a kept epoch scores) is its training recipe
(:mod:`fer_utils.training.recipes`).

Determinism. The weights start from ``seed``; before every epoch the shuffle order and EVERY
random stream inside the model (the augmentation layer's, each dropout's) are re-derived from
``(seed, epoch)`` only (:func:`epoch_seed`, :func:`reseed`), and so are a family's batch-mixing
draws. So a run resumed from its checkpoint continues exactly as if it had never stopped, and,
for a family without a schedule over the run (the report's CNN), the first E epochs of a longer
run ARE the E-epoch run. (On CPU; TensorFlow's op determinism is switched on.)

Files. A run directory's files (config, history, checkpoint, kept models, metrics) are named,
written and read by :mod:`fer_utils.training.rundir` only; this module trains. Each file is
written atomically; an epoch ends in three steps (next checkpoint, history row, commit: see
:func:`fer_utils.training.rundir.save_checkpoint`), so a kill at any instant leaves a run that
resumes with no gap and no duplicate epoch. One process trains a run at a time (the run's
lock). A call that fails before its first epoch finishes removes the run folder if (and only
if) that call created it.

Epochs. A family with ``fixed_epochs`` (``resnet``: its cosine schedule spans the run) is
trained to its recipe's epochs and its checkpoint is removed once the final model is scored;
the report's CNN goes to whatever ``epochs`` asks, keeping the checkpoint to go further later.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from fer_utils.data.datasets import Dataset, stratified_split
from fer_utils.data.mixture import epoch_order
from fer_utils.errors import ConfigError, RunStoreError
from fer_utils.training import rundir
from fer_utils.training.config import RunConfig
from fer_utils.training.provenance import trained_with
from fer_utils.training.rundir import HISTORY_COLUMNS, read_history  # noqa: F401  (re-exported: the history's columns and reader)
from fer_utils.training.scoring import final_row


def epoch_seed(seed: int, epoch: int, salt: int = 0xE90C) -> int:
    """The seed of epoch ``epoch`` (0-based) of a run seeded ``seed``: depends on both only
    (and on the family's ``salt``: :mod:`fer_utils.training.recipes`)."""
    return int(np.random.default_rng([int(seed), int(epoch), int(salt)]).integers(0, 2**31 - 1))


def reseed(model, seed: int) -> None:
    """Restart every random stream inside ``model`` from ``seed``: a layer with ``reseed`` (the
    augmentation) by it, every other layer with a ``seed_generator`` (dropout) from ``seed`` and
    its position. A stream that ran on across epochs would not survive a checkpoint, so a
    resumed run would draw other masks."""
    from keras import ops

    for i, layer in enumerate(model.layers):
        if callable(getattr(layer, "reseed", None)):
            layer.reseed(seed)
            continue
        gen = getattr(layer, "seed_generator", None)
        if gen is not None:
            gen.state.assign(ops.convert_to_tensor([(int(seed) + 7919 * (i + 1)) & 0x7FFFFFFF, 0], dtype=gen.state.dtype))


def split_for(cfg: RunConfig, data: Dataset):
    """(x_train, y_train, x_val, y_val, x_test, y_test) for the run's selection protocol.

    ``test`` (the report's): validate on the test split. ``holdout``: a stratified, seeded
    ``val_fraction`` of train is held out for validation; the test split is used once per
    evaluation at the end.
    """
    if cfg.selection == "test":
        return data.x_train, data.y_train, data.x_test, data.y_test, data.x_test, data.y_test
    keep, held = holdout_split(cfg, data)
    return (data.x_train[keep], data.y_train[keep], data.x_train[held], data.y_train[held], data.x_test, data.y_test)


def holdout_split(cfg: RunConfig, data: Dataset):
    """(keep, held) indices into the train split: a stratified, seeded ``val_fraction`` of EACH
    set's train split and class (one set: of each class, as always)."""
    from fer_utils.data.mixture import sources_of

    key = sources_of(data, "train") * data.num_classes + data.y_train
    return stratified_split(key, cfg.val_fraction, cfg.seed)


def train_sources(cfg: RunConfig, data: Dataset) -> np.ndarray:
    """Each training face's set, in :func:`split_for`'s order (after the holdout is taken out)."""
    from fer_utils.data.mixture import sources_of

    src = sources_of(data, "train")
    return src if cfg.selection == "test" else src[holdout_split(cfg, data)[0]]


def target_epochs(cfg: RunConfig, epochs=None) -> int:
    """The epochs a run is trained to: ``epochs``, or the recipe's for a fixed-epoch family
    (where any other count is an error saying why)."""
    from fer_utils.models.registry import family

    if family(cfg.model).fixed_epochs:
        if epochs not in (None, cfg.epochs):
            raise ConfigError(f"epochs {epochs!r}: a {cfg.model} run is trained to its recipe's {cfg.epochs} epochs (its "
                              f"schedule spans them); set the recipe's epochs instead (fer train --model {cfg.model} --epochs N)")
        return int(cfg.epochs)
    if epochs is None or int(epochs) < 1:
        raise ConfigError(f"epochs {epochs!r}: expected 1 or more")
    return int(epochs)


def train_run(run_dir, cfg: RunConfig, data: Dataset, epochs=None, *, keep_epochs=(), verbose: bool = True,
              stop_after=None, max_batches=None, score_test: bool = True, jit_epochs: bool = False) -> list[dict]:
    """Bring the run in ``run_dir`` to ``epochs`` finished epochs; return its history rows.

    Already-finished epochs are never trained again: asking for fewer epochs than the run has
    costs nothing, asking for more continues from the checkpoint. ``keep_epochs`` lists epoch
    counts whose model is kept (``model-eNNNN.keras``) and scored, e.g. every row of Table 2;
    the last epoch is always kept. ``stop_after`` (tests) stops after that many new epochs;
    ``max_batches`` (tests, benchmarks) trains that many batches an epoch; ``score_test=False``
    (ablations: selection) scores no test split. ``jit_epochs`` (JAX only): each epoch is one
    jitted call on the device (:mod:`fer_utils.training.device`), under the same contract.
    """
    # Everything that can be checked is checked before the run folder exists.
    if data.fingerprint != cfg.data:
        raise ConfigError(f"run config is for data {cfg.data[:12]}, but the data set given is {data.fingerprint[:12]} ({data.source})")
    if data.image_size != cfg.image_size:
        raise ConfigError(f"run config wants {cfg.image_size}px images, the data set was loaded at {data.image_size}px; "
                          f"load it with image_size={cfg.image_size}")
    epochs = target_epochs(cfg, epochs)
    if jit_epochs:
        from fer_utils.training.device import check_available

        check_available()
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunStoreError(f"{run_dir}: is a file, not a run folder; choose another --run-dir or move that file away")
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # folders this call may make
    with rundir.locked(run_dir):  # another process training the run: refused here, nothing removed
        try:
            return _train_locked(run_dir, cfg, data, epochs, keep_epochs, verbose, stop_after, max_batches, score_test,
                                 jit_epochs)
        except BaseException:
            if created and run_dir.is_dir() and not (run_dir / rundir.HISTORY).exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # ours alone: this call made the folder, no epoch finished
                for parent in created[1:]:  # and the empty parents it made (rmdir: never one another run filled)
                    try:
                        parent.rmdir()
                    except OSError:
                        break
            raise


def _train_locked(run_dir, cfg, data, epochs, keep_epochs, verbose, stop_after, max_batches, score_test, jit_epochs):
    from fer_utils.models.registry import family, save_model
    from fer_utils.training import backend
    from fer_utils.training.recipes import training_of

    recipe, fixed = training_of(cfg.model), family(cfg.model).fixed_epochs
    keep = sorted({int(e) for e in keep_epochs if int(e) <= epochs} | {int(epochs)})
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

    split = split_for(cfg, data)
    x_tr, y_tr, x_val, y_val = split[:4]
    src_tr = train_sources(cfg, data)
    k = data.num_classes
    backend.make_deterministic()
    weights = recipe.class_weights(y_tr, k, cfg)
    per_epoch = math.ceil((cfg.epoch_faces or len(y_tr)) / cfg.batch_size)
    steps = per_epoch if max_batches is None else min(max_batches, per_epoch)
    if rows:
        model = rundir.load_checkpoint(run_dir, len(rows), steps) if len(rows) < epochs or not fixed else None
    else:
        model = recipe.build(cfg, k, data.class_names, steps)
    val_data = recipe.val_batches(x_val, y_val, cfg, k)
    dev = None
    if jit_epochs and len(rows) < epochs:
        from fer_utils.training.device import DeviceEpochs, prepare

        w, mix_prob = recipe.device_inputs(cfg, weights)
        dev = DeviceEpochs(model, x_tr, y_tr, w, k, cfg.batch_size, mix_prob)
        prepare(model, val_data)
    if verbose and len(rows) < epochs:
        what = f"resuming at epoch {len(rows) + 1}" if rows else "new run"
        print(f"[{cfg.run_id}] {what}: {len(y_tr)} train / {len(y_val)} val images, "
              f"{f'{cfg.epoch_faces} faces per epoch, ' if cfg.epoch_faces else ''}{epochs} epochs, "
              f"{recipe.describe(cfg, model)}", flush=True)
    trained = 0
    for epoch in range(len(rows), epochs):
        if stop_after is not None and trained >= stop_after:
            break
        t0 = time.perf_counter()
        es = epoch_seed(cfg.seed, epoch, recipe.salt)
        reseed(model, es)
        order = epoch_order(src_tr, cfg.mix, np.random.default_rng(es), cfg.epoch_faces)[: None if max_batches is None else max_batches * cfg.batch_size]
        if dev is not None:  # one jitted call on the device, the same batches and draws
            logs = dev.epoch(order, recipe.draws(math.ceil(len(order) / cfg.batch_size), cfg, es))
            val = model.evaluate(val_data, verbose=0, return_dict=True)
            hist = {"loss": [logs["loss"]], "accuracy": [logs["accuracy"]], "val_loss": [val["loss"]], "val_accuracy": [val["accuracy"]]}
        else:
            hist = model.fit(recipe.train_batches(x_tr, y_tr, cfg, k, order, es, weights), validation_data=val_data,
                             initial_epoch=epoch, epochs=epoch + 1, verbose=0, shuffle=False).history
        secs = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **{m: float(hist[m][-1]) for m in HISTORY_COLUMNS[1:5]}, "seconds": secs}
        rundir.save_checkpoint(run_dir, model)  # weights first, then the row, then the commit (rundir)
        if epoch + 1 in keep:
            save_model(model, rundir.model_file(run_dir, epoch + 1), class_names=data.class_names)
        rows.append(row)
        rundir.write_history(run_dir, rows)
        rundir.commit_checkpoint(run_dir)
        trained += 1
        if verbose:
            print(f"[{cfg.run_id}] epoch {epoch + 1}/{epochs} - loss {row['loss']:.4f} - accuracy {row['accuracy']:.4f}"
                  f" - val_loss {row['val_loss']:.4f} - val_accuracy {row['val_accuracy']:.4f} - {secs:.1f}s"
                  f" ({len(order) / max(secs, 1e-9):.0f} img/s)", flush=True)
        if epoch + 1 in keep:
            _record(run_dir, metrics, rows, epoch + 1, model, split, data, cfg, recipe, score_test, order, jit_epochs)
    for e in keep:  # kept epochs not scored yet (a kill while scoring): score their kept model
        if e <= len(rows) and str(e) not in metrics["evaluations"]:
            path = rundir.model_file(run_dir, e)
            m = rundir.load_keras(path) if path.exists() else (model if model is not None and e == len(rows) else None)
            if m is not None:
                _record(run_dir, metrics, rows, e, m, split, data, cfg, recipe, score_test, None, jit_epochs)
    if fixed and len(rows) >= epochs and str(epochs) in metrics["evaluations"]:
        rundir.checkpoint_file(run_dir).unlink(missing_ok=True)  # finished for good: the final model holds the same weights
    return rows[:epochs]


def _record(run_dir, metrics, rows, epoch, model, split, data, cfg, recipe, score_test, order, jit_epochs=False):
    """Score the model kept at ``epoch`` and write it into ``metrics.json``."""
    where = trained_with()
    if jit_epochs:
        where["epochs_on"] = "device: one jitted call per epoch (fer_utils.training.device)"
    ev = {"final_row": final_row(rows[epoch - 1]), **recipe.score(model, split, data.class_names, cfg, score_test),
          "trained_with": where}
    if data.source_names:  # a mixture: each set's test faces scored apart, and its held-out faces
        ev.update(by_source(model, cfg, data, score_test))
    metrics["evaluations"][str(epoch)] = ev
    metrics["run_id"], metrics["model"] = cfg.run_id, cfg.model
    metrics["data_source"] = " + ".join(data.source_names) if data.source_names else Path(str(data.source)).name
    if data.synthetic:  # what a model that sorts says of itself (fer_utils.apply.choose)
        metrics["data_synthetic"] = True
    if recipe.records_cost:
        from fer_utils.models.report_cnn import flops_per_image

        per_epoch = len(order) if order is not None else metrics.get("cost", {}).get("images_per_epoch", len(split[1]))
        train_seconds = sum(r["seconds"] for r in rows[:epoch])  # epochs only (loading, evaluation and restarts excluded)
        metrics["cost"] = {"parameters": int(model.count_params()), "flops_per_image": flops_per_image(model), "epochs": epoch,
                           "train_seconds": train_seconds, "images_per_epoch": int(per_epoch),
                           "images_per_second": per_epoch * epoch / max(train_seconds, 1e-9)}
    rundir.write_metrics(run_dir, metrics)


def by_source(model, cfg: RunConfig, data: Dataset, score_test: bool) -> dict:
    """The scores of a mixture's model on each set's held-out faces and (``score_test``) test faces."""
    from fer_utils.data.mixture import sources_of
    from fer_utils.training.scoring import scores

    out = {"holdout_by_source": {}, "test_by_source": {}}
    if cfg.selection == "holdout":
        held = holdout_split(cfg, data)[1]
        src = sources_of(data, "train")[held]
        for i, name in enumerate(data.source_names):
            m = src == i
            if m.any():
                out["holdout_by_source"][name] = scores(model, data.x_train[held][m], data.y_train[held][m], data.class_names)
    if score_test:
        src = sources_of(data, "test")
        for i, name in enumerate(data.source_names):
            m = src == i
            if m.any():
                out["test_by_source"][name] = scores(model, data.x_test[m], data.y_test[m], data.class_names)
    return {k: v for k, v in out.items() if v}


def print_final(final: dict, file=None) -> None:
    file = file or sys.stdout  # looked up at call time (notebooks and tests replace it)
    cols = ("Loss", "Accuracy", "Val_loss", "Val_accuracy", "Discrepancy")
    print("\t".join(cols), file=file)
    print("\t".join(f"{final[c]:.4f}" for c in cols), file=file)
