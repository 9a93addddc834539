"""Profiles: the whole study's settings by name (``full``, ``tenth``, ``demo``, ``smoke``, ``beyond``, ...).

``full`` is the report's protocol exactly; ``tenth`` divides every epoch count by 10; ``demo``
keeps the grids with fewer epochs on the synthetic set; ``smoke`` is tiny. A profile may also
name runs of other models trained beside the report's CNN on the same data (``models``: presets
of :data:`fer_utils.models.registry.PRESETS`; the ``beyond`` profiles).

The *final model* is the configuration the study ends with (Table 4's chosen row, which the
sorting step uses). Under ``full`` and ``tenth`` it is exactly that row. The demo changes it, and
only it (:attr:`Profile.final_epochs`, :attr:`Profile.scale_final_batch`): on 1,500 faces the
report's batch 2048 is ONE optimizer step per epoch, so the row's 3 epochs leave a model that
predicts the majority class for every face. The tables stay as they are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from fer_utils.errors import ConfigError
from fer_utils.study.protocol import BEYOND_NOTEBOOKS, STUDY_NOTEBOOKS



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
    #: Runs of other models trained beside the report's CNN on the same data, one per seed: presets
    #: of :data:`fer_utils.models.registry.PRESETS` (the beyond profiles: ``("resnet",)``).
    models: tuple[str, ...] = ()

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
    models=("resnet",),
)
PROFILES["beyond-smoke"] = dataclasses.replace(
    PROFILES["smoke"], name="beyond-smoke", notebooks=BEYOND_NOTEBOOKS, models=("resnet-smoke",),
    description="The smoke profile plus the beyond model at smoke size (preset resnet-smoke), for the tests.")


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


def describe_all(width: int = 100) -> str:
    """One line per profile, name and the start of its description (``make help`` prints it)."""
    def first(text):
        return text.split(". ")[0].split(": ")[0].rstrip(".")[: width - 18]

    return "\n".join(f"    {n:<13} {first(p.description)}" for n, p in PROFILES.items())


if __name__ == "__main__":  # pragma: no cover - `make help`
    print(describe_all())
