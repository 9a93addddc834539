"""Every model is a name here (timm's rule): its recipe fields, how it is built, what it costs,
and the one loader of a saved model file of any family.

========== ============================================ =====================================
name       what                                         recipe fields (beyond RunConfig's)
========== ============================================ =====================================
report_cnn the report's CNN (:mod:`.report_cnn`)        depth, augment
resnet     the residual network (:mod:`.resnet`)        widths, blocks, stem, dropout, epochs,
                                                        weight_decay, warmup_epochs, ... tta
========== ============================================ =====================================

A new family adds: a recipe dataclass in :mod:`.recipes` (``check(cfg)``, ``to_dict()``,
``run_prefix(cfg)``, and a ``train_flops(cfg)``), its network module, an entry in
:data:`FAMILIES`, and its training in :mod:`fer_utils.training.recipes`. :data:`PRESETS` names ready-made configurations that
profiles and ``fer train --preset`` refer to.

:func:`load_model` imports every family's module before it reads a file, so a model saved by
any family loads in every command, whatever was imported before (Keras finds a custom layer
only once its class is registered).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fer_utils.errors import ConfigError, FerError
from fer_utils.models import recipes  # the recipes need no Keras: naming and checking a run stays cheap


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    recipe: type  # the dataclass of the family's own fields (fer_utils.models.recipes: no Keras)
    defaults: dict  # shared RunConfig fields this family changes (e.g. its image size)
    module: str  # where its network lives (imported by build and load_model only)
    fixed_epochs: bool  # True: the epoch count is part of the recipe (a schedule spans it)
    train_flops: object  # cfg -> FLOPs to train one image (analytic: no model built)


FAMILIES: dict[str, Family] = {
    "report_cnn": Family("report_cnn", "the report's CNN (Figure 4): 2-6 conv layers, Adam, the report's augmentation",
                         recipes.ReportCNNRecipe, {}, "fer_utils.models.report_cnn", False, recipes.report_cnn_train_flops),
    "resnet": Family("resnet", "a small residual network, AdamW + cosine, label smoothing, MixUp/CutMix, "
                     "class-balanced loss, robustness augmentation (the beyond model)",
                     recipes.ResNetRecipe, dict(recipes.RESNET_DEFAULTS), "fer_utils.models.resnet", True,
                     recipes.resnet_train_flops),
}

#: Ready-made configurations by name: ``{name: (model, fields)}`` (``fields`` are RunConfig's).
PRESETS = {
    "report_cnn": ("report_cnn", {}),
    "resnet": ("resnet", {}),  # the beyond profile's recipe: 64 px, 60 epochs
    "resnet-smoke": ("resnet", recipes.RESNET_SMOKE),  # tiny, for the tests
    "resnet-loose": ("resnet", {"loose_prob": 0.25}),  # and a quarter of the faces loosely framed
    "resnet-wide": ("resnet", {"stem": 48, "widths": (48, 96, 192, 384)}),  # 1.5x the channels: 2.25x the work per face
}


def family(name: str) -> Family:
    """The family called ``name`` (a one-line ConfigError naming the known ones otherwise)."""
    if name not in FAMILIES:
        raise ConfigError(f"model {name!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def names() -> tuple[str, ...]:
    return tuple(FAMILIES)


def preset(name: str) -> tuple[str, dict]:
    """``(model, fields)`` of the preset ``name`` (a copy: callers may change it)."""
    if name not in PRESETS:
        raise ConfigError(f"preset {name!r}: expected one of {', '.join(PRESETS)}")
    model, fields = PRESETS[name]
    return model, dict(fields)


def train_flops(cfg) -> int:
    """FLOPs to train one image under the run configuration ``cfg`` (analytic, no model built)."""
    return int(family(cfg.model).train_flops(cfg))


def build(cfg, num_classes: int, class_names=None):
    """The network of ``cfg`` (the report's CNN comes compiled with its Adam; the others are
    compiled by their training recipe, :mod:`fer_utils.training.recipes`)."""
    if cfg.model == "report_cnn":
        from fer_utils.models.report_cnn import build_model

        return build_model(cfg.depth, cfg.image_size, num_classes, lr=cfg.lr, augment=cfg.augment,
                           class_names=class_names, seed=cfg.seed)
    family(cfg.model)
    from fer_utils.models.resnet import build_resnet

    return build_resnet(cfg, num_classes, class_names=class_names)


def register_all() -> None:
    """Import every family's module: their custom layers and functions are then registered."""
    import importlib

    for fam in FAMILIES.values():
        importlib.import_module(fam.module)



def save_model(model, path, class_names=None) -> None:
    """Save atomically as ``.keras``; the class names travel in a sidecar JSON
    (``<path>.classes.json``, what :func:`load_model` reads)."""
    from fer_utils.atomic import atomic_save_model, atomic_write_json
    from fer_utils.data.datasets import CLASS_NAMES

    path = Path(path)
    if path.suffix != ".keras":
        raise ConfigError(f"{path}: expected a file name ending in .keras")
    names = list(class_names or getattr(model, "class_names", None) or CLASS_NAMES)
    atomic_save_model(model, path)
    atomic_write_json(path.with_name(path.name + ".classes.json"), {"class_names": names})


def read_keras(path, compile: bool = True):
    """``keras.saving.load_model`` with every family registered; exceptions pass through."""
    import keras

    from fer_utils.models.augment import ReportAugmentation
    from fer_utils.models.resnet import BeyondAugmentation

    register_all()
    custom = {"ReportAugmentation": ReportAugmentation, "BeyondAugmentation": BeyondAugmentation}  # files saved unregistered
    return keras.saving.load_model(Path(path), compile=compile, custom_objects=custom)


def load_model(path, compile: bool = True):
    """Load a model file of ANY family saved by this project; returns ``(model, class_names)``.
    A missing, damaged or foreign file is a one-line :class:`~fer_utils.errors.FerError`."""
    from fer_utils.data.datasets import CLASS_NAMES

    path = Path(path)
    if not path.exists():
        raise FerError(f"{path}: no such model file. Expected a .keras file saved by 'fer train --save'; check the path")
    try:
        model = read_keras(path, compile=compile)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the user's file
        raise FerError(f"{path}: cannot be read as a Keras model ({type(exc).__name__}: a truncated, damaged or foreign "
                       f"file); expected a .keras file saved by 'fer train --save'") from None
    side = path.with_name(path.name + ".classes.json")
    from fer_utils.jsonfile import read_json

    names = read_json(side, {"class_names": list}, what='a model\'s class names (JSON {"class_names": [...]})', missing=None,
                      fix="delete it to use RAF-DB's 7 classes, or save the model again with 'fer train --save'")
    names = CLASS_NAMES if names is None else tuple(names["class_names"])
    problem = class_names_problem(names)
    if problem:
        raise FerError(f"{side}: {problem}; expected distinct, non-empty names such as {list(CLASS_NAMES[:2])}; fix the "
                       f"file, delete it to use RAF-DB's 7 classes, or save the model again with 'fer train --save'")
    model.class_names = names
    return model, names


def class_names_problem(names) -> str | None:
    """Why ``names`` cannot name a model's outputs (None: they can): each a non-empty string
    without control characters, no name twice (a folder per class is made from them).

    >>> class_names_problem(("Happiness", "Happiness")), class_names_problem((1, 2)), class_names_problem(("a", "b"))
    ("the class name 'Happiness' is given twice", 'class name 1 is not a string', None)
    """
    seen = set()
    for n in names:
        if not isinstance(n, str):
            return f"class name {n!r} is not a string"
        if not n.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in n):
            return f"class name {n!r} is empty or holds a control character"
        if n in seen:
            return f"the class name {n!r} is given twice"
        seen.add(n)
    return None
