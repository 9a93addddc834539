"""The recipe of every model family: the fields a run configuration adds for it, their checks,
its run-id prefix and its training cost, with nothing that needs Keras (so a configuration is
checked, named and planned without importing a backend).

* ``report_cnn``: :class:`ReportCNNRecipe` and the report's layer plan (Figure 4, one reading:
  :mod:`fer_utils.models.report_cnn` builds it), with the closed-form FLOP count.
* ``resnet``: :class:`ResNetRecipe` (:mod:`fer_utils.models.resnet` builds it), its shared-field
  defaults (:data:`RESNET_DEFAULTS`) and the smoke size (:data:`RESNET_SMOKE`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fer_utils.errors import ConfigError

#: Filters of conv layer 1..6 (the report's plan). Depth d uses the first d entries.
REPORT_FILTERS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
#: Padding of conv layer 1..6: the report's first two convs are 'valid', the added ones 'same'.
REPORT_PADDING: tuple[str, ...] = ("valid", "valid", "same", "same", "same", "same")
MIN_DEPTH, MAX_DEPTH = 2, 6


@dataclass(frozen=True)
class ReportCNNRecipe:
    """The report's CNN's own fields of a run configuration
    (:class:`fer_utils.training.config.RunConfig` holds the shared ones). The epoch count is
    NOT one of them: the report's optimizer has no schedule, so the first E epochs of a longer
    run are the E-epoch run (DESIGN.md, "Cost")."""

    depth: int = 2  # total conv layers, 2..6
    augment: bool = True  # the report's shear/zoom/flip, in training only

    def __post_init__(self):
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or not MIN_DEPTH <= self.depth <= MAX_DEPTH:
            raise ConfigError(f"depth {self.depth!r}: expected an integer from {MIN_DEPTH} to {MAX_DEPTH} (total conv layers, as in the report)")

    def check(self, cfg) -> None:
        """What depends on the shared fields too: a depth too deep for the image size fails here."""
        feature_map_sizes(self.depth, cfg.image_size)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def run_prefix(cfg) -> str:
        return f"d{cfg.depth}-lr{cfg.lr:g}-b{cfg.batch_size}-s{cfg.seed}-{cfg.selection}"


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
                f"Use images of at least {min_input_size(depth, padding)} px ('fer train --image-size', "
                f"'fer model summary --input-size') or a smaller depth"
            )
        side //= 2
        sizes.append(side)
    return sizes


def min_input_size(depth: int, padding=REPORT_PADDING) -> int:
    for s in range(4, 4096):
        if _sides(depth, s, padding)[1] is None:
            return s
    raise ConfigError(f"depth {depth}: no input size up to 4096 works")  # pragma: no cover


def training_flops(depth: int, image_size: int, num_classes: int = 7, dense_units: int = 128) -> int:
    """FLOPs to train on one image: 3x the forward pass (forward, then the gradients of
    activations and of weights), counting a multiply-add as 2 and only the convolutions and
    dense layers (pooling, ReLU, softmax and the optimizer are <1%).

    >>> round(training_flops(4, 128) / 1e9, 3)   # the report's depth-4 CNN at 128x128
    0.348
    >>> training_flops(2, 32)
    7895424
    """
    sides = feature_map_sizes(depth, image_size)  # raises ConfigError where the map collapses
    flops, side, channels = 0, int(image_size), 3
    for k in range(depth):
        conv_side = side - 2 if REPORT_PADDING[k] == "valid" else side
        flops += 2 * conv_side * conv_side * 9 * channels * REPORT_FILTERS[k]
        side, channels = sides[k], REPORT_FILTERS[k]
    flat = side * side * channels
    flops += 2 * flat * dense_units + 2 * dense_units * num_classes
    return 3 * flops


def report_cnn_train_flops(cfg) -> int:
    """:func:`training_flops` of a run configuration (what the engine orders runs by)."""
    return training_flops(cfg.depth, cfg.image_size)


@dataclass(frozen=True)
class ResNetRecipe:
    """The residual network's own fields of a run configuration
    (:class:`fer_utils.training.config.RunConfig` holds the shared ones: image size, batch
    size, peak learning rate, seed, holdout fraction). Its defaults are the ``beyond`` profile's
    recipe: 64x64, batch 128, lr 2e-3 (:data:`DEFAULTS`)."""

    widths: tuple[int, ...] = (32, 64, 128, 256)  # channels of each stage (each halves the side)
    blocks: tuple[int, ...] = (1, 1, 1, 1)  # residual blocks per stage
    stem: int = 32  # channels of the 3x3 stem
    dropout: float = 0.2  # before the classifier
    #: The run's length: part of the configuration, because the cosine schedule spans it (the
    #: first E epochs of a longer run are NOT the E-epoch run, unlike the report's CNN).
    epochs: int = 60
    weight_decay: float = 0.05  # AdamW decoupled weight decay
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    mix_prob: float = 0.5  # share of batches mixed (half MixUp alpha 0.2, half CutMix alpha 1)
    balance: str = "sqrt"  # class weights: "none", "sqrt" (1/sqrt(freq)) or "inverse" (1/freq)
    gray_prob: float = 0.2  # robustness to grayscale faces
    lowres_prob: float = 0.2  # robustness to 48x48-like faces
    erase_prob: float = 0.25
    #: robustness to loosely framed faces (the face shrunk to 55-90% of the side); off by default,
    #: and then left out of the configuration, so every run id made before it stays
    loose_prob: float = 0.0
    tta: str = "flip"  # test-time augmentation reported beside the plain prediction

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        if len(self.widths) != len(self.blocks) or not self.widths:
            raise ConfigError(f"widths {self.widths} and blocks {self.blocks}: expected one entry per stage in each")
        if self.balance not in ("none", "sqrt", "inverse"):
            raise ConfigError(f"balance {self.balance!r}: expected 'none', 'sqrt' or 'inverse'")
        if int(self.epochs) < 1:
            raise ConfigError(f"epochs {self.epochs!r}: expected a positive number of epochs")
        for k in ("gray_prob", "lowres_prob", "erase_prob", "loose_prob", "mix_prob", "dropout", "label_smoothing"):
            if not 0 <= getattr(self, k) <= 1:
                raise ConfigError(f"{k} {getattr(self, k)!r}: expected a probability in [0, 1]")

    def check(self, cfg) -> None:
        """What depends on the shared fields too (``cfg`` is the whole RunConfig)."""
        if cfg.image_size < 2 ** (len(self.widths) + 1):
            raise ConfigError(f"image_size {cfg.image_size}: {len(self.widths)} stages need at least {2 ** (len(self.widths) + 1)} pixels")
        if cfg.selection != "holdout":
            raise ConfigError(f"selection {cfg.selection!r}: the resnet recipe selects on a held-out part of train "
                              f"(selection 'holdout'); its test split is scored once, after the last epoch")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"], d["blocks"] = list(self.widths), list(self.blocks)
        if not d["loose_prob"]:
            d.pop("loose_prob")  # what every run before it did: their run ids stay
        return d

    @staticmethod
    def run_prefix(cfg) -> str:
        return f"resnet-e{cfg.epochs}-b{cfg.batch_size}-s{cfg.seed}-{cfg.selection}"


#: The shared fields of the recipe's runs (RunConfig's own defaults are the report's CNN's).
RESNET_DEFAULTS = {"image_size": 64, "batch_size": 128, "lr": 2e-3, "selection": "holdout"}
#: The `beyond-smoke` profile's recipe: tiny, for the tests and notebook smoke runs.
RESNET_SMOKE = {"image_size": 32, "batch_size": 32, "widths": (16, 32, 64), "blocks": (1, 1, 1), "stem": 16, "epochs": 2,
         "warmup_epochs": 1}


def resnet_train_flops(cfg) -> int:
    """FLOPs to train on one image (3x the forward pass's multiply-adds x 2, convolutions and
    the classifier only), from the configuration alone: what the engine orders runs by.

    >>> from fer_utils.training.config import RunConfig
    >>> resnet_train_flops(RunConfig(data="x", model="resnet", image_size=64)) // 3   # the forward pass
    135007744
    """
    side, ch, flops = cfg.image_size, 3, 0
    flops += 2 * side * side * 9 * ch * cfg.stem
    ch = cfg.stem
    for width, n in zip(cfg.widths, cfg.blocks):
        for b in range(n):
            stride = 2 if b == 0 else 1
            out = -(-side // stride)
            flops += 2 * out * out * 9 * ch * width + 2 * out * out * 9 * width * width
            if stride != 1 or ch != width:
                flops += 2 * out * out * ch * width
            side, ch = out, width
    flops += 2 * ch * 7
    return 3 * flops
