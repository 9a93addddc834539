"""The report's CNN (Figure 4), built by one function.

Figure 4's listing is partly garbled by a copy-paste. The consistent reading (DESIGN.md), kept
here and nowhere else:

* conv 1: Conv2D(16, 3x3, relu, padding='valid') -> MaxPool 2x2
* conv 2: Conv2D(32, 3x3, relu, padding='valid') -> MaxPool 2x2      ("depth 2")
* conv k = 3..6: Conv2D(64 * 2**(k-3), 3x3, relu, padding='same') -> MaxPool 2x2 (64..512)
* Flatten -> Dense(128, relu) -> Dense(7, softmax)

"Depth" is the TOTAL number of conv layers (2..6): the report's code comments call the added
ones "layer 3" and "layer 4", and Experiment 1 says "a network depth of 2". Parameter counts
at 128x128: depth 2: 3,692,519; depth 4: 901,287; depth 6: 1,639,335 (pinned by tests).

Same numbers on every backend (benchmarks/bench_backends.py): a seed gives the same initial
weights under TensorFlow and JAX (:func:`initial_weights` draws them with NumPy), and the loss is
taken from the softmax's logits on both (:func:`softmax_crossentropy`; the output layer is still
``Dense(7)`` with a softmax, :func:`report_softmax`, so the model outputs probabilities).

The model takes uint8 images: the first layers cast and rescale by 1/255 (the report's
``rescale=1./255``) and then augment (training only), so data stays uint8 - 4x smaller - until
it reaches the model.
"""

from __future__ import annotations

import math
import threading

import keras
import numpy as np
from keras import layers, ops

from fer_utils.models.augment import ReportAugmentation
from fer_utils.models.recipes import (  # noqa: F401  (re-exported: the report's layer plan lives with the recipe)
    MAX_DEPTH,
    MIN_DEPTH,
    REPORT_FILTERS,
    REPORT_PADDING,
    ReportCNNRecipe,
    feature_map_sizes,
    min_input_size,
    training_flops,
)
from fer_utils.data.datasets import CLASS_NAMES
from fer_utils.errors import ConfigError

#: Smallest probability the fallback loss takes the log of (float32's smallest normal number).
TINY = 1.1754944e-38
#: Per thread: (probabilities, logits) of the last call of :func:`report_softmax`, so the loss can
#: find the logits of the very output it is given (JAX arrays cannot carry them as an attribute).
_LAST_SOFTMAX = threading.local()


@keras.saving.register_keras_serializable(package="fer_utils")
def report_softmax(x):
    """The output layer's softmax (the report's ``activation='softmax'``): returns the
    probabilities, and remembers ``x`` as their logits for :func:`softmax_crossentropy`."""
    out = keras.activations.softmax(x)  # under TensorFlow it also sets out._keras_logits = x
    _LAST_SOFTMAX.pair = (out, x)
    return out


def _logits_of(y_pred):
    logits = getattr(y_pred, "_keras_logits", None)
    pair = getattr(_LAST_SOFTMAX, "pair", (None, None))
    if logits is None and pair[0] is y_pred:  # the very array the softmax returned (traced or eager)
        logits = pair[1]
    return logits


@keras.saving.register_keras_serializable(package="fer_utils")
def softmax_crossentropy(y_true, y_pred):
    """The report's categorical cross-entropy, from the softmax's logits on every backend.

    Keras' built-in ``categorical_crossentropy`` computes it differently per backend: under
    TensorFlow the softmax output carries its logits (``_keras_logits``) and the loss is taken
    from them (as tf.keras 2 did for the report), while a JAX array cannot carry them, so under
    JAX the probabilities are clipped to [1e-7, 1 - 1e-7]. The clip has zero gradient: a
    confidently wrong face then contributes a constant -log(1e-7) = 16.12 and nothing to learn
    from, and a run that saturates in its first steps stays there (loss (1 - 0.3886) * 16.12 =
    9.855 with every face called Happiness: the JAX collapse; benchmarks/bench_backends.py).
    Here the logits of the output (remembered by :func:`report_softmax`) are used on both
    backends, gradient ``p - y``. For a probability tensor of unknown origin it falls back to
    the log of the probabilities floored at 1.2e-38 (exact until the true class's logit trails
    by 87).
    """
    logits = _logits_of(y_pred)
    if logits is not None:
        return ops.categorical_crossentropy(y_true, logits, from_logits=True)
    p = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
    return -ops.sum(y_true * ops.log(ops.maximum(p, TINY)), axis=-1)


def initial_weights(model: keras.Model, seed: int) -> None:
    """Set every conv and dense kernel to Glorot-uniform draws and every bias to zero, as
    Keras' defaults define them, but drawn by NumPy from ``seed``: the same start, bit for bit,
    under TensorFlow and JAX (Keras' initializers use each backend's own random generator, so
    the same seed gives unrelated weights on the two).
    """
    rng = np.random.default_rng([int(seed), 0x1417])
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = tuple(int(d) for d in kernel.shape)
        receptive = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        kernel.assign(rng.uniform(-limit, limit, shape).astype("float32"))
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.zeros(tuple(int(d) for d in layer.bias.shape), "float32"))


def build_model(
    depth: int = 2,
    input_size: int = 128,
    num_classes: int = 7,
    *,
    lr: float = 1e-3,
    augment: bool = True,
    filters: tuple[int, ...] = REPORT_FILTERS,
    dense_units: int = 128,
    class_names: tuple[str, ...] | None = None,
    seed: int | None = None,
    compile: bool = True,
) -> keras.Model:
    """Build (and compile, as the report did: Adam(lr), categorical cross-entropy, accuracy)
    the report's CNN with ``depth`` conv layers (2..6) for ``input_size`` square RGB uint8
    images.

    ``seed`` fixes the initial weights through :func:`initial_weights` (the same on every
    backend); the loss is :func:`softmax_crossentropy` (the report's categorical cross-entropy,
    computed the same way on every backend).

    ``class_names`` is stored on the model (``model.class_names`` and in the saved file), so a
    saved model can sort faces later without the data set.
    """
    if not isinstance(depth, int) or not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise ConfigError(f"depth {depth!r}: expected an integer from {MIN_DEPTH} to {MAX_DEPTH} (total conv layers, as in the report)")
    if len(filters) < depth:
        raise ConfigError(f"filters {filters}: need at least {depth} entries for depth {depth}")
    if num_classes < 2:
        raise ConfigError(f"num_classes {num_classes}: expected 2 or more")
    if not lr > 0:
        raise ConfigError(f"learning rate {lr!r}: expected a positive number such as 0.001")
    feature_map_sizes(depth, input_size)
    class_names = tuple(class_names or (CLASS_NAMES if num_classes == len(CLASS_NAMES) else [f"class_{i}" for i in range(num_classes)]))
    if seed is not None:
        keras.utils.set_random_seed(int(seed))

    inputs = keras.Input((input_size, input_size, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)  # casts uint8 -> float32, then x/255
    if augment:
        x = ReportAugmentation(name="augment", seed=seed)(x)
    for k in range(depth):
        x = layers.Conv2D(filters[k], 3, activation="relu", padding=REPORT_PADDING[k], name=f"conv{k + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{k + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = layers.Dense(num_classes, activation=report_softmax, name="predictions")(x)  # softmax
    model = keras.Model(inputs, outputs, name=f"report_cnn_depth{depth}")
    model.class_names = class_names
    if seed is not None:
        initial_weights(model, seed)
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss=softmax_crossentropy, metrics=["accuracy"])
    return model


def augmentation_layer(model: keras.Model) -> ReportAugmentation | None:
    for layer in model.layers:
        if isinstance(layer, ReportAugmentation):
            return layer
    return None


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda s, **k: lines.append(s), line_length=88)
    return "\n".join(lines)


def flops_per_image(model: keras.Model) -> int:
    """Multiply-adds x 2 of the convolutions and dense layers for ONE image, forward pass
    (batch norm, activations, pooling and augmentation left out: a few % at most). Training
    costs about 3x this (forward + two backward products). The one counter that walks a built
    model; :func:`training_flops` is its closed form for the report's CNN (no model built, for
    ordering a plan), and a test keeps the two equal.

    >>> m = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same"), layers.Flatten(), layers.Dense(2)])
    >>> flops_per_image(m) == 2 * 8 * 8 * 3 * 3 * 3 * 4 + 2 * 256 * 2
    True
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1] // layer.groups
            total += 2 * h * w * kh * kw * cin * cout
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
        elif isinstance(layer, keras.Model):
            total += flops_per_image(layer)
    return int(total)


