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

The model takes uint8 images: the first layers cast and rescale by 1/255 (the report's
``rescale=1./255``) and then augment (training only), so data stays uint8 - 4x smaller - until
it reaches the model.
"""

from __future__ import annotations

import json

import keras
from keras import layers

from .augment import ReportAugmentation
from .datasets import CLASS_NAMES
from .errors import ConfigError

#: Filters of conv layer 1..6 (the report's plan). Depth d uses the first d entries.
REPORT_FILTERS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
#: Padding of conv layer 1..6: the report's first two convs are 'valid', the added ones 'same'.
REPORT_PADDING: tuple[str, ...] = ("valid", "valid", "same", "same", "same", "same")
MIN_DEPTH, MAX_DEPTH = 2, 6


def _sides(depth: int, input_size: int, padding=REPORT_PADDING):
    """(sizes after each block, index of the block where it collapses or None)."""
    sizes, side = [], int(input_size)
    for k in range(depth):
        if padding[k] == "valid":
            side -= 2
        if side < 2:
            return sizes, k
        side //= 2
        sizes.append(side)
    return sizes, None


def feature_map_sizes(depth: int, input_size: int, padding=REPORT_PADDING) -> list[int]:
    """Spatial side after each conv+pool block (raises ConfigError if it collapses).

    >>> feature_map_sizes(4, 128)
    [63, 30, 15, 7]
    """
    sizes, side = [], int(input_size)
    for k in range(depth):
        before = side
        if padding[k] == "valid":
            side -= 2
        if side < 2:
            raise ConfigError(
                f"depth {depth} at input size {input_size}: the feature map collapses at conv "
                f"layer {k + 1} (side {before} -> {side} before pooling; a 2x2 pool needs 2 or more). "
                f"Use a larger --input-size (at least {min_input_size(depth, padding)}) or a "
                f"smaller depth"
            )
        side //= 2
        sizes.append(side)
    return sizes


def min_input_size(depth: int, padding=REPORT_PADDING) -> int:
    for s in range(4, 4096):
        if _sides(depth, s, padding)[1] is None:
            return s
    raise ConfigError(f"depth {depth}: no input size up to 4096 works")  # pragma: no cover


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
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"report_cnn_depth{depth}")
    model.class_names = class_names
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def augmentation_layer(model: keras.Model) -> ReportAugmentation | None:
    for layer in model.layers:
        if isinstance(layer, ReportAugmentation):
            return layer
    return None


def save_model(model: keras.Model, path, class_names=None) -> None:
    """Save atomically as ``.keras``; the class names travel in a sidecar JSON and in the
    archive's metadata (``<path>.classes.json`` is what :func:`load_model` reads)."""
    from .atomic import atomic_write_json, temp_path_for
    import os
    from pathlib import Path

    path = Path(path)
    if path.suffix != ".keras":
        raise ConfigError(f"{path}: expected a file name ending in .keras")
    names = list(class_names or getattr(model, "class_names", None) or CLASS_NAMES)
    tmp = temp_path_for(path)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    atomic_write_json(path.with_name(path.name + ".classes.json"), {"class_names": names})


def load_model(path, compile: bool = True):
    """Load a model saved by :func:`save_model`; returns ``(model, class_names)``."""
    from pathlib import Path

    from .errors import FerError

    path = Path(path)
    if not path.exists():
        raise FerError(f"{path}: no such model file. Expected a .keras file saved by 'fer train --save'; check the path")
    try:
        model = keras.saving.load_model(path, compile=compile, custom_objects={"ReportAugmentation": ReportAugmentation})
    except Exception as exc:  # noqa: BLE001 - any failure to load is the user's file
        raise FerError(f"{path}: cannot load the model ({type(exc).__name__}: {exc}); expected a .keras file saved by this package") from None
    side = path.with_name(path.name + ".classes.json")
    names = tuple(json.loads(side.read_text())["class_names"]) if side.exists() else CLASS_NAMES
    model.class_names = names
    return model, names


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda s, **k: lines.append(s), line_length=88)
    return "\n".join(lines)
