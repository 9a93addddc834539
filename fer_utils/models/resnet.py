"""Beyond the report: a small residual network and a modern recipe, from scratch, BESIDE the
report's CNN (:mod:`fer_utils.models.report_cnn` is untouched).

The network (:func:`build_resnet`, model name ``resnet`` in :mod:`fer_utils.models.registry`): a 3x3 stem, then one stage per entry of ``widths``, each
halving the side (the first block of a stage has stride 2 and a 1x1 projection shortcut),
``blocks`` basic residual blocks per stage (conv-BN-ReLU-conv-BN + shortcut, ReLU), global
average pooling, dropout, softmax. At 64x64 with widths (32, 64, 128, 256) and one block per
stage: about 1.2M parameters and 0.1 GFLOP per image (forward; :func:`flops_per_image`).

The recipe (:class:`fer_utils.models.recipes.ResNetRecipe`, the model's fields of a run configuration; trained by the
one trainer, :mod:`fer_utils.training.trainer`, fed by :mod:`fer_utils.training.recipes`):
AdamW with a linear warm-up and cosine decay, label smoothing, MixUp or CutMix on half of the
batches, class-balanced loss weights (inverse square root of the class frequency), and one
augmentation layer inside the model (:class:`BeyondAugmentation`, active in training only):
flip, small rotation/scale/shift, brightness and contrast, and - for faces of other origins -
grayscale, low resolution (down to 1/2 or 1/3 of the side and back up) and random erasing; and,
off unless ``loose_prob`` is set (preset ``resnet-loose``), loosely framed faces (shrunk to 55-90%
of the side).
Test-time: the mirror image's probabilities averaged in (flip TTA). Selection is on a held-out
part of train; test is touched once per reported model.

Everything is ``keras.ops``, so the same model trains under TensorFlow and JAX; the trainer's
device path (:mod:`fer_utils.training.device`, ``--jit-epochs``) runs a whole epoch in one jitted
call with the same layers and :func:`mix_batch`.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from fer_utils.errors import ConfigError
from fer_utils.models.report_cnn import flops_per_image  # noqa: F401  (re-exported: the one layer-walking FLOP counter)


# --------------------------------------------------------------------------------------------
# Augmentation inside the model (training only)


@keras.saving.register_keras_serializable(package="fer_utils")
class BeyondAugmentation(keras.layers.Layer):
    """Flip, rotation/scale/shift, brightness/contrast, grayscale, low resolution and random
    erasing, per image, on float images in [0, 1]; identity at inference. ``reseed(seed)``
    restarts the random stream (per-epoch seeding, as the report's layer)."""

    def __init__(self, rotation_deg=10.0, scale=0.1, shift=0.08, brightness=0.1, contrast=0.2,
                 gray_prob=0.2, lowres_prob=0.2, erase_prob=0.25, loose_prob=0.0, loose_scale=(0.55, 0.9), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_deg, self.scale, self.shift = float(rotation_deg), float(scale), float(shift)
        #: loosely framed faces: with this probability the face is shrunk to loose_scale of the
        #: side (the rest filled by its nearest edge pixels), as in a crop cut wide around the head
        self.loose_prob, self.loose_scale = float(loose_prob), (float(loose_scale[0]), float(loose_scale[1]))
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.gray_prob, self.lowres_prob, self.erase_prob = float(gray_prob), float(lowres_prob), float(erase_prob)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed if seed is not None else 1337)

    def reseed(self, seed: int) -> None:
        self.seed_generator.state.assign(ops.convert_to_tensor([int(seed) & 0x7FFFFFFF, 0], dtype=self.seed_generator.state.dtype))

    def _u(self, shape, lo=0.0, hi=1.0):
        return keras.random.uniform(shape, lo, hi, seed=self.seed_generator)

    def call(self, x, training=None):
        if not training:
            return x
        n = ops.shape(x)[0]
        side = x.shape[1]
        c = (side - 1) / 2.0
        # geometry: output pixel -> input pixel = R(theta)/s (p - c) + c + t, then the flip
        theta = self._u((n,), -self.rotation_deg, self.rotation_deg) * (math.pi / 180.0)
        s = self._u((n,), 1.0 - self.scale, 1.0 + self.scale)
        if self.loose_prob > 0:  # drawn only when on: the recipe's stream stays as it was without it
            loose = self._u((n,)) < self.loose_prob
            s = ops.where(loose, self._u((n,), *self.loose_scale), s)
        tx = self._u((n,), -self.shift, self.shift) * side
        ty = self._u((n,), -self.shift, self.shift) * side
        flip = ops.cast(self._u((n,)) < 0.5, "float32")
        a0, a1 = ops.cos(theta) / s, -ops.sin(theta) / s
        b0, b1 = ops.sin(theta) / s, ops.cos(theta) / s
        a2 = c - a0 * c - a1 * c + tx
        b2 = c - b0 * c - b1 * c + ty
        a2, b2 = a2 + flip * a0 * (side - 1), b2 + flip * b0 * (side - 1)
        sign = 1.0 - 2.0 * flip
        zeros = ops.zeros_like(a0)
        m = ops.stack([a0 * sign, a1, a2, b0 * sign, b1, b2, zeros, zeros], axis=1)
        x = ops.image.affine_transform(x, m, interpolation="bilinear", fill_mode="nearest", data_format="channels_last")
        # photometric
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        con = ops.reshape(self._u((n,), 1.0 - self.contrast, 1.0 + self.contrast), (-1, 1, 1, 1))
        bri = ops.reshape(self._u((n,), -self.brightness, self.brightness), (-1, 1, 1, 1))
        x = (x - mean) * con + mean + bri
        # faces of other origins: grayscale, low resolution
        if x.shape[-1] == 3:
            gray = ops.sum(x * ops.convert_to_tensor([0.299, 0.587, 0.114], x.dtype), axis=-1, keepdims=True)
            g = ops.reshape(ops.cast(self._u((n,)) < self.gray_prob, x.dtype), (-1, 1, 1, 1))
            x = g * ops.broadcast_to(gray, ops.shape(x)) + (1.0 - g) * x
        half = ops.image.resize(ops.image.resize(x, (side // 2, side // 2), antialias=True), (side, side))
        third = ops.image.resize(ops.image.resize(x, (side // 3, side // 3), antialias=True), (side, side))
        r = self._u((n,))
        low_half = ops.reshape(ops.cast(r < self.lowres_prob / 2, x.dtype), (-1, 1, 1, 1))
        low_third = ops.reshape(ops.cast((r >= self.lowres_prob / 2) & (r < self.lowres_prob), x.dtype), (-1, 1, 1, 1))
        x = low_half * half + low_third * third + (1.0 - low_half - low_third) * x
        # random erasing: one rectangle of 2-25% of the area, aspect 0.3-3.3, uniform grey value
        area = self._u((n,), 0.02, 0.25) * side * side
        aspect = ops.exp(self._u((n,), math.log(0.3), math.log(3.3)))
        h = ops.minimum(ops.sqrt(area * aspect), side)
        w = ops.minimum(ops.sqrt(area / aspect), side)
        y0 = self._u((n,)) * (side - h)
        x0 = self._u((n,)) * (side - w)
        grid = ops.cast(ops.arange(side), x.dtype)
        rows = (grid[None, :] >= y0[:, None]) & (grid[None, :] < (y0 + h)[:, None])
        cols = (grid[None, :] >= x0[:, None]) & (grid[None, :] < (x0 + w)[:, None])
        on = ops.cast(self._u((n,)) < self.erase_prob, x.dtype)
        box = ops.cast(rows[:, :, None] & cols[:, None, :], x.dtype)[..., None] * ops.reshape(on, (-1, 1, 1, 1))
        fill = ops.reshape(self._u((n,)), (-1, 1, 1, 1))
        x = box * fill + (1.0 - box) * x
        return ops.clip(x, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update(rotation_deg=self.rotation_deg, scale=self.scale, shift=self.shift, brightness=self.brightness,
                   contrast=self.contrast, gray_prob=self.gray_prob, lowres_prob=self.lowres_prob,
                   erase_prob=self.erase_prob, loose_prob=self.loose_prob, loose_scale=list(self.loose_scale), seed=self.seed)
        return cfg



# --------------------------------------------------------------------------------------------
# The network


def _block(x, width, stride, name, seeds):
    shortcut = x
    y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1",
                      kernel_initializer=_glorot(seeds))(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv2", kernel_initializer=_glorot(seeds))(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != width:
        shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False, name=f"{name}_proj", kernel_initializer=_glorot(seeds))(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def _glorot(seeds):
    return keras.initializers.GlorotUniform(seed=next(seeds))


def layer_seeds(seed: int):
    """The seeds of the network's random initializers and its dropout, in the order the layers
    are made: the draws Keras itself makes for unseeded layers right after
    ``keras.utils.set_random_seed(seed)`` (``random.randint(1, 10**9)`` each), but from a
    generator of our own. Keras draws from the process-wide ``random`` module, which other
    threads (a Dask worker's) draw from too: the same run would start from other weights there.

    >>> next(layer_seeds(0)) == __import__("random").Random(0).randint(1, int(1e9))
    True
    """
    import random

    rng = random.Random(int(seed))
    while True:
        yield rng.randint(1, int(1e9))


def build_resnet(cfg, num_classes: int = 7, *, class_names=None, channels: int = 3, augment: bool = True) -> keras.Model:
    """The residual network of the run configuration ``cfg`` (uncompiled; a
    :class:`~fer_utils.training.config.RunConfig` of model ``resnet``, or anything with its
    fields). Input: (S, S, channels) pixels in 0..255 (uint8 or float: MixUp makes float
    batches); the first layer rescales to [0, 1]."""
    from fer_utils.data.datasets import CLASS_NAMES

    if num_classes < 2:
        raise ConfigError(f"num_classes {num_classes}: expected 2 or more")
    class_names = tuple(class_names or (CLASS_NAMES if num_classes == len(CLASS_NAMES) else [f"class_{i}" for i in range(num_classes)]))
    keras.utils.set_random_seed(int(cfg.seed))
    seeds = layer_seeds(cfg.seed)
    inputs = keras.Input((cfg.image_size, cfg.image_size, channels), dtype="float32", name="image")
    # the pixel steps and the class probabilities stay float32 under any dtype policy (a mixed
    # bfloat16 policy then computes the convolutions alone in bfloat16: benchmarks/bench_resnet.py)
    x = layers.Rescaling(1.0 / 255, name="rescale", dtype="float32")(inputs)
    if augment:
        x = BeyondAugmentation(gray_prob=cfg.gray_prob, lowres_prob=cfg.lowres_prob, erase_prob=cfg.erase_prob,
                               loose_prob=cfg.loose_prob, seed=cfg.seed, name="augment", dtype="float32")(x)
    x = layers.Conv2D(cfg.stem, 3, padding="same", use_bias=False, name="stem_conv", kernel_initializer=_glorot(seeds))(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, (width, n) in enumerate(zip(cfg.widths, cfg.blocks)):
        for b in range(n):
            x = _block(x, width, 2 if b == 0 else 1, f"stage{s + 1}_block{b + 1}", seeds)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(cfg.dropout, name="dropout", seed=next(seeds))(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions", kernel_initializer=_glorot(seeds),
                           dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="beyond_resnet")
    model.class_names = class_names
    return model


# --------------------------------------------------------------------------------------------
# MixUp / CutMix (shared by the fit path and the GPU script's jitted step)


def mix_batch(x, y, perm, lam, cutmix, cy, cx):
    """Mix a float batch ``x`` (N, S, S, C) and its (soft) labels ``y`` with the permutation
    ``perm``: MixUp (``cutmix`` false) blends with weight ``lam``; CutMix pastes a box of area
    ``1 - lam`` centred at (``cy``, ``cx``) in [0, 1], and the label weight is the area kept.
    The random draws are the caller's, so the host (NumPy) and a jitted step (JAX) share it.
    Returns (x, y, lam_effective)."""
    side = x.shape[1]
    xb, yb = ops.take(x, perm, axis=0), ops.take(y, perm, axis=0)
    cut = ops.sqrt(1.0 - lam) * side
    y0 = ops.clip(cy * side - cut / 2, 0, side)
    y1 = ops.clip(cy * side + cut / 2, 0, side)
    x0 = ops.clip(cx * side - cut / 2, 0, side)
    x1 = ops.clip(cx * side + cut / 2, 0, side)
    grid = ops.cast(ops.arange(side), "float32") + 0.5
    box = ops.cast((grid[:, None] >= y0) & (grid[:, None] < y1) & (grid[None, :] >= x0) & (grid[None, :] < x1), "float32")
    kept = 1.0 - ops.mean(box)
    cutmix = ops.cast(cutmix, "float32")
    lam_eff = cutmix * kept + (1.0 - cutmix) * lam
    box = box[None, :, :, None]
    x_cut = box * xb + (1.0 - box) * x
    x_mix = lam * x + (1.0 - lam) * xb
    x_out = cutmix * x_cut + (1.0 - cutmix) * x_mix
    return x_out, lam_eff * y + (1.0 - lam_eff) * yb, lam_eff


def class_weights(y, num_classes: int, balance: str):
    """Per-class loss weights, normalised to a mean of 1 over the training faces."""
    import numpy as np

    counts = np.bincount(np.asarray(y), minlength=num_classes).astype(np.float64)
    if balance == "none":
        w = np.ones(num_classes)
    else:
        w = 1.0 / np.maximum(counts, 1) ** (0.5 if balance == "sqrt" else 1.0)
    w = w / (w[np.asarray(y)].mean() if len(y) else 1.0)
    return w.astype(np.float32)


def optimizer(cfg, steps_per_epoch: int):
    """AdamW with linear warm-up to ``cfg.lr`` and cosine decay to 0 over the whole run."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = min(cfg.warmup_epochs * steps_per_epoch, total - 1)
    sched = keras.optimizers.schedules.CosineDecay(0.0 if warm else cfg.lr, max(1, total - warm), alpha=0.0,
                                                   warmup_target=cfg.lr if warm else None, warmup_steps=warm)
    return keras.optimizers.AdamW(learning_rate=sched, weight_decay=cfg.weight_decay)
