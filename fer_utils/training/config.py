"""Run configurations, profiles, and the report's protocol and published numbers, as data.

A *run* is one training configuration (:class:`RunConfig`) WITHOUT its epoch count: the run
store trains it once, epoch by epoch, and every table row that needs its first E epochs reads
them from the same run. A *profile* (:class:`Profile`) is the whole study's settings: the four
grids, the epoch counts, the image size and the data set. ``full`` is the report's protocol
exactly; ``demo`` keeps the grids with fewer epochs on the synthetic set; ``smoke`` is tiny.

The *final model* is the configuration the study ends with (Table 4's chosen row, which the
sorting step uses). Under ``full`` and ``tenth`` it is exactly that row. The demo changes it, and
only it (:attr:`Profile.final_epochs`, :attr:`Profile.scale_final_batch`): on 1,500 faces the
report's batch 2048 is ONE optimizer step per epoch, so the row's 3 epochs leave a model that
predicts the majority class for every face. The tables stay as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from fer_utils.errors import ConfigError

SELECTIONS = ("test", "holdout")

#: The notebooks of the report's study, in the order ``fer run`` executes them.
STUDY_NOTEBOOKS = ("00_data", "01_learning_rate", "02_epochs", "03_network_depth", "04_batch_size", "05_organize", "06_report")
#: ... and with the beyond model's comparison after them (profiles ``beyond``, ``beyond-smoke``).
BEYOND_NOTEBOOKS = STUDY_NOTEBOOKS + ("07_beyond",)
BEYOND_PRESETS = ("default", "smoke")

#: Training images of RAF-DB basic (the official split): the data size the report's batch
#: sizes were chosen for (``Profile.scale_final_batch`` scales to the data in use by it).
RAF_DB_TRAIN = 12271


def from_dict(cls, d: dict):
    """``cls(**d)`` for a dataclass, where an unknown key is an error naming it (nanoGPT's rule)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {sorted(unknown)}; known: {sorted(names)}")
    return cls(**d)


@dataclass(frozen=True)
class RunConfig:
    """One training configuration. The epoch count is NOT part of it (see the module doc)."""

    data: str  # fingerprint of the decoded data set (fer_utils.data.datasets.fingerprint)
    lr: float = 0.001  # Adam learning rate
    depth: int = 2  # total conv layers, 2..6 (fer_utils.models.report_cnn)
    batch_size: int = 64
    seed: int = 0  # weights, shuffle order and augmentation all derive from it
    image_size: int = 128  # images are resized (NEAREST) to image_size x image_size
    augment: bool = True  # the report's shear/zoom/flip, in training only
    selection: str = "test"  # "test": validate on the test split (the report); "holdout": on a split of train
    val_fraction: float = 0.1  # share of train held out when selection == "holdout"
    model: str = "report_cnn"
    #: How the numbers are made: 2 = NumPy initial weights, backend-independent augmentation draws
    #: and the loss from logits (the same study on TensorFlow and JAX). Runs written before it
    #: (no such key in their config.json) read as 1 and are never resumed by today's code.
    numerics: int = 2

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection {self.selection!r}: expected one of {SELECTIONS}")
        if not self.lr > 0:
            raise ConfigError(f"lr {self.lr!r}: expected a positive learning rate such as 0.001")
        if int(self.batch_size) < 1:
            raise ConfigError(f"batch_size {self.batch_size!r}: expected a positive integer")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction {self.val_fraction!r}: expected a number in (0, 1)")
        if self.model != "report_cnn":
            raise ConfigError(f"model {self.model!r}: only 'report_cnn' is implemented")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if self.selection == "test":
            d.pop("val_fraction")  # irrelevant, so it must not split run ids
        return d

    @property
    def run_id(self) -> str:
        """Stable id: a hash of the canonical JSON of :meth:`to_dict` plus a readable prefix."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canon.encode()).hexdigest()[:12]
        return f"d{self.depth}-lr{self.lr:g}-b{self.batch_size}-s{self.seed}-{self.selection}-{digest}"

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return from_dict(cls, {"numerics": 1, **d})

    def replace(self, **changes) -> "RunConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown RunConfig keys {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# The report's protocol (DESIGN.md "Facts about the report") and its published numbers.

#: Each table: the factor varied, its grid, and the fixed settings (as the report states them).
REPORT_PROTOCOL = {
    1: {"factor": "lr", "grid": (0.01, 0.001, 0.0001), "epochs": 50, "depth": 2, "batch_size": 64},
    2: {"factor": "epochs", "grid": (100, 200, 500, 800, 1000), "lr": 0.001, "depth": 2, "batch_size": 64},
    3: {"factor": "depth", "grid": (3, 4, 5, 6), "lr": 0.001, "epochs": 100, "batch_size": 64},
    4: {"factor": "batch_size", "grid": (128, 256, 512, 1024, 2048), "lr": 0.001, "epochs": 100, "depth": 4},
}

TABLE_CAPTIONS = {
    1: "Table 1: Learning Rate Experiment Results",
    2: "Table 2: Epochs Experiment Results",
    3: "Table 3: Network Depth Experiment Results",
    4: "Table 4: Batch Size Experiment Results",
}
TABLE_FACTOR_LABEL = {1: "Learning Rate", 2: "Epochs", 3: "Network Depth", 4: "Batch Size"}
METRIC_COLUMNS = ("Loss", "Accuracy", "Val_loss", "Val_accuracy", "Discrepancy")

#: Every cell of the report's Tables 1-4: {table: {grid value: (Loss, Accuracy, Val_loss,
#: Val_accuracy, Discrepancy)}}, copied from the report's text.
REPORT_TABLES: dict[int, dict[float, tuple[float, float, float, float, float]]] = {
    1: {
        0.01: (1.6414, 0.3889, 1.6319, 0.3862, 0.0027),
        0.001: (0.2538, 0.9071, 0.9752, 0.7546, 0.1525),
        0.0001: (0.6241, 0.7787, 0.7161, 0.7471, 0.0316),
    },
    2: {
        100: (0.1257, 0.9567, 1.2703, 0.7683, 0.1884),
        200: (0.0700, 0.9763, 1.7911, 0.7598, 0.2165),
        500: (0.0536, 0.9822, 2.1033, 0.7526, 0.2296),
        800: (0.0282, 0.9910, 2.8044, 0.7562, 0.2348),
        1000: (0.0364, 0.9887, 2.9084, 0.7239, 0.2648),
    },
    3: {
        3: (0.0841, 0.9703, 1.3802, 0.7803, 0.1900),
        4: (0.1015, 0.9652, 1.1369, 0.7947, 0.1705),
        5: (0.1301, 0.9514, 1.0095, 0.7956, 0.1558),
        6: (0.1220, 0.9580, 1.2100, 0.7692, 0.1888),
    },
    4: {
        128: (0.1075, 0.9619, 1.0375, 0.8035, 0.1584),
        256: (0.1153, 0.9607, 1.1335, 0.7872, 0.1735),
        512: (0.1912, 0.9311, 0.7981, 0.7924, 0.1387),
        1024: (0.2128, 0.9223, 0.8333, 0.7774, 0.1449),
        2048: (0.4335, 0.8467, 0.6851, 0.7774, 0.0693),
    },
}

#: What the report chose from each table, and by which rule.
REPORT_CHOICES = {
    1: {"value": 0.001, "rule": "max Val_accuracy"},
    2: {"value": 100, "rule": "max Val_accuracy"},
    3: {"value": 4, "rule": "max Val_accuracy"},
    # "the smallest Discrepancy between training and validation accuracy": a gap, so its size.
    # (All the report's discrepancies are positive; ours can be negative when a large batch
    # underfits and train accuracy, measured under augmentation, trails validation.)
    4: {"value": 2048, "rule": "min |Discrepancy|"},
}


# ---------------------------------------------------------------------------------------------
# Profiles


@dataclass(frozen=True)
class Profile:
    """The whole study's settings. Epoch counts are absolute (already scaled)."""

    name: str
    description: str
    image_size: int
    lr_grid: tuple[float, ...]
    lr_epochs: int  # Table 1's epochs (report: 50)
    epochs_grid: tuple[int, ...]  # Table 2 (report: 100..1000)
    depth_grid: tuple[int, ...]  # Table 3 (report: 3..6)
    batch_grid: tuple[int, ...]  # Table 4 (report: 128..2048)
    chosen_epochs: int  # the report's choice from Table 2 (100), scaled
    base_lr: float = 0.001
    base_depth: int = 2
    base_batch: int = 64
    chosen_depth: int = 4
    seeds: tuple[int, ...] = (0,)
    epoch_scale: str = "1 (the report's epochs)"
    #: default data: "synthetic" (made by `fer synth` with the sizes below) or a path
    data: str = "synthetic"
    synthetic: dict = field(default_factory=lambda: {"n_train": 2000, "n_test": 500, "n_unlabelled": 300, "seed": 0})
    #: The final model's epochs; None: the chosen row's (Table 4's epochs, the report's protocol).
    final_epochs: int | None = None
    #: Scale the final model's batch size by n_train / RAF_DB_TRAIN (at least 1), so that an
    #: epoch takes as many optimizer steps as the report's batch took on RAF-DB.
    scale_final_batch: bool = False
    #: The notebooks ``fer run`` executes, in order (07_beyond only where the profile has a beyond model).
    notebooks: tuple[str, ...] = STUDY_NOTEBOOKS
    #: The beyond model (:mod:`fer_utils.models.resnet`) trained beside the report's CNN on the same data:
    #: "" none, "default" :class:`~fer_utils.models.resnet.BeyondConfig` as it stands, "smoke" ``beyond.SMOKE``.
    beyond: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "full": Profile(
        name="full",
        description="The report's protocol exactly: 128x128, Table 1 at 50 epochs, Table 2 at "
        "100..1000 epochs, Tables 3-4 at 100 epochs. Days of CPU on full RAF-DB.",
        image_size=128,
        lr_grid=(0.01, 0.001, 0.0001),
        lr_epochs=50,
        epochs_grid=(100, 200, 500, 800, 1000),
        depth_grid=(3, 4, 5, 6),
        batch_grid=(128, 256, 512, 1024, 2048),
        chosen_epochs=100,
        data="raf-db",
    ),
    "demo": Profile(
        name="demo",
        description="The report's grids with epochs divided by about 33, on the synthetic set "
        "(1,500 train / 500 test faces) at 72x72 (the smallest size at which depth 6 still has "
        "a feature map), so that `make report` takes minutes on a 2-core laptop. Unlike the report, "
        "the final model is trained at batch 250 (2048 scaled to the data size) for 30 epochs, so "
        "that it learns; the tables keep the report's batch sizes.",
        image_size=72,
        lr_grid=(0.01, 0.001, 0.0001),
        lr_epochs=2,
        epochs_grid=(3, 6, 15, 24, 30),
        depth_grid=(3, 4, 5, 6),
        batch_grid=(128, 256, 512, 1024, 2048),
        chosen_epochs=3,
        epoch_scale="about 1/33 (50 -> 2, 100/200/500/800/1000 -> 3/6/15/24/30)",
        synthetic={"n_train": 1500, "n_test": 500, "n_unlabelled": 300, "seed": 0},
        # The final model (not the tables): batch 2048 * 1500/12271 = 250, so 6 optimizer steps
        # an epoch as on RAF-DB, for 30 epochs (the demo's longest training, Table 2's 1000):
        # 180 steps. Measured by `fer run --profile demo`: test accuracy 0.898, mean class accuracy
        # 0.781 on the synthetic test, sorting into 7 of 7 folders (batch 2048 itself: 0.388, 0.143, 1).
        final_epochs=30,
        scale_final_batch=True,
    ),
    "tenth": Profile(
        name="tenth",
        description="The report's protocol at 128x128 with every epoch count divided by 10 "
        "(Table 1 at 5 epochs, Table 2 at 10..100, Tables 3-4 at 10): 200 epochs in all, for "
        "real RAF-DB on one GPU in minutes (or about seven hours on a 2-core CPU).",
        image_size=128,
        lr_grid=(0.01, 0.001, 0.0001),
        lr_epochs=5,
        epochs_grid=(10, 20, 50, 80, 100),
        depth_grid=(3, 4, 5, 6),
        batch_grid=(128, 256, 512, 1024, 2048),
        chosen_epochs=10,
        epoch_scale="1/10 (50 -> 5, 100..1000 -> 10..100)",
        data="raf-db",
    ),
    "smoke": Profile(
        name="smoke",
        description="Tiny, for the tests: 32x32, one or two epochs, a few hundred images.",
        image_size=32,
        lr_grid=(0.01, 0.001, 0.0001),
        lr_epochs=1,
        epochs_grid=(1, 2),
        depth_grid=(3, 4),
        batch_grid=(128, 256),
        chosen_epochs=1,
        epoch_scale="tiny (1-2 epochs)",
        synthetic={"n_train": 140, "n_test": 70, "n_unlabelled": 20, "seed": 0},
    ),
}

# The beyond profiles: the report's CNN (its study, cut to one point per table at the report's
# choices) and the beyond model (fer_utils.models.resnet) on the same data, compared by 07_beyond.
PROFILES["beyond"] = Profile(
    name="beyond",
    description="The beyond model (a small ResNet, modern recipe, 64x64, 60 epochs: 73 min measured on a 2-core CPU, "
    "minutes on a GPU) beside the report's CNN at 128x128 with one point per table at the report's choices "
    "(lr 0.001, depth 4, batch 128, 10 epochs: about 30 CNN epochs in all), on RAF-DB; 07_beyond compares them.",
    image_size=128,
    lr_grid=(0.001,),
    lr_epochs=10,
    epochs_grid=(10,),
    depth_grid=(4,),
    batch_grid=(128,),
    chosen_epochs=10,
    epoch_scale="1/10 for the CNN (one point per table); the beyond model its own 60 epochs",
    data="raf-db",
    notebooks=BEYOND_NOTEBOOKS,
    beyond="default",
)
PROFILES["beyond-smoke"] = dataclasses.replace(
    PROFILES["smoke"], name="beyond-smoke", notebooks=BEYOND_NOTEBOOKS, beyond="smoke",
    description="The smoke profile plus the beyond model at smoke size (beyond.SMOKE), for the tests.")


def get_profile(name: str, **overrides) -> Profile:
    """A profile by name, with field overrides (an unknown field is an error naming it)."""
    if name not in PROFILES:
        raise ConfigError(f"profile {name!r}: expected one of {', '.join(PROFILES)} (e.g. --profile demo)")
    prof = PROFILES[name]
    if overrides:
        names = {f.name for f in dataclasses.fields(Profile)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown profile override(s) {sorted(unknown)}; known: {sorted(names)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        prof = dataclasses.replace(prof, **fixed)
        for k, v in overrides.items():
            print(f"profile {name}: {k} overridden to {v!r}")
    return prof
