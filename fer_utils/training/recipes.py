"""How each model family is trained: what differs between families, and nothing else.

The trainer (:mod:`fer_utils.training.trainer`) owns the loop, the resume contract, the files
and the per-epoch seeding; a family's training recipe only says how to build and compile its
network, how to feed it a batch, and what to score at a kept epoch. One entry per name of
:mod:`fer_utils.models.registry` (a test keeps the two lists equal).

* ``report_cnn``: Adam at a constant learning rate; uint8 batches in the epoch's order, one-hot
  labels; validation on the selection split; at a kept epoch, the test evaluation
  (:func:`fer_utils.training.scoring.evaluate`).
* ``resnet``: AdamW with warm-up and cosine decay over the recipe's epochs, label smoothing;
  float batches, MixUp or CutMix on ``mix_prob`` of them (every draw made up front from the
  epoch's seed), class-balanced loss weights; validation on the holdout; at the last epoch, the
  holdout and (once) the test split, plain and with flip TTA, and the run's cost.
"""

from __future__ import annotations

import math

import numpy as np

from fer_utils.training.scoring import evaluate, ordered_batches, scores


class ReportCNNTraining:
    salt = 0xE90C  # the epoch seeds' stream (fer_utils.training.trainer.epoch_seed)
    records_cost = False

    def build(self, cfg, num_classes, class_names, steps_per_epoch):
        from fer_utils.models.registry import build

        return build(cfg, num_classes, class_names)  # compiled: Adam(cfg.lr), the report's loss

    def class_weights(self, y, num_classes, cfg):
        return None

    def train_batches(self, x, y, cfg, num_classes, order, epoch_seed, weights):
        return ordered_batches(x, y, cfg.batch_size, num_classes, order)

    def val_batches(self, x, y, cfg, num_classes):
        return ordered_batches(x, y, max(cfg.batch_size, 256), num_classes)

    def describe(self, cfg, model) -> str:
        return f"lr={cfg.lr:g} depth={cfg.depth} batch={cfg.batch_size}"

    def device_inputs(self, cfg, weights):
        """(class weights, mix probability) of the device path (:mod:`fer_utils.training.device`)."""
        return None, 0.0

    def draws(self, n_batches, cfg, epoch_seed):
        return None

    def score(self, model, split, class_names, cfg, score_test: bool) -> dict:
        _, _, _, _, x_te, y_te = split
        return {"test": evaluate(model, x_te, y_te, class_names)}


class ResNetTraining:
    salt = 0xBE70
    records_cost = True

    def build(self, cfg, num_classes, class_names, steps_per_epoch):
        import keras

        from fer_utils.models.registry import build
        from fer_utils.models.resnet import optimizer

        model = build(cfg, num_classes, class_names)
        model.compile(optimizer=optimizer(cfg, steps_per_epoch), metrics=["accuracy"],
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing))
        return model

    def class_weights(self, y, num_classes, cfg):
        from fer_utils.models.resnet import class_weights

        return class_weights(y, num_classes, cfg.balance)

    def train_batches(self, x, y, cfg, num_classes, order, epoch_seed, weights):
        return mixed_batches(x, y, weights, cfg.batch_size, num_classes, order, cfg.mix_prob, epoch_seed)

    def val_batches(self, x, y, cfg, num_classes):
        return mixed_batches(x, y, np.ones(num_classes, np.float32), 256, num_classes)

    def device_inputs(self, cfg, weights):
        return weights, cfg.mix_prob

    def draws(self, n_batches, cfg, epoch_seed):
        return mix_draws(n_batches, cfg.batch_size, epoch_seed)

    def describe(self, cfg, model) -> str:
        from fer_utils.models.report_cnn import flops_per_image

        return (f"{cfg.image_size}px, batch={cfg.batch_size}, peak lr={cfg.lr:g}, {model.count_params():,} parameters, "
                f"{flops_per_image(model) / 1e6:.0f} MFLOP/image")

    def score(self, model, split, class_names, cfg, score_test: bool) -> dict:
        _, _, x_val, y_val, x_te, y_te = split
        out = {"holdout": scores(model, x_val, y_val, class_names), "holdout_tta": scores(model, x_val, y_val, class_names, cfg.tta)}
        if score_test:  # once per reported model
            out["test"], out["test_tta"] = scores(model, x_te, y_te, class_names), scores(model, x_te, y_te, class_names, cfg.tta)
        return out


TRAINING = {"report_cnn": ReportCNNTraining(), "resnet": ResNetTraining()}


def training_of(model: str):
    """The training recipe of the model family ``model``."""
    from fer_utils.models.registry import family

    family(model)  # an unknown name is a one-line error naming the known ones
    return TRAINING[model]


def mixed_batches(x, y, w, batch_size, k, order=None, mix_prob=0.0, seed=0):
    """Float batches (MixUp/CutMix on ``mix_prob`` of them), soft labels, class weights."""
    import keras

    from fer_utils.models.resnet import mix_batch

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.arange(len(x)) if order is None else order
            self.draws = mix_draws(len(self), batch_size, seed)

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


def mix_draws(n_batches: int, batch_size: int, seed: int) -> list[tuple]:
    """Every batch's mixing draws, all up front, so batch i's mixing depends on (seed, i) only:
    (u: mix when below ``mix_prob``, CutMix rather than MixUp, CutMix's lambda, MixUp's lambda,
    the box centre's y and x, the permutation). The ``fit`` path and the device path
    (:mod:`fer_utils.training.device`) both take them from here."""
    rng = np.random.default_rng([int(seed), 0x313])
    return [(rng.random(), rng.random() < 0.5, rng.beta(1.0, 1.0), rng.beta(0.2, 0.2), rng.random(), rng.random(),
             rng.permutation(batch_size)) for _ in range(n_batches)]
