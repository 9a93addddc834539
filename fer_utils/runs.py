"""The run store: ``results/runs/<run id>/``, one folder per configuration (without epochs).

Asking for E epochs of a configuration that already has E or more costs nothing; asking for
more continues the stored run (:func:`fer_utils.train.train_run` does the work).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .config import RunConfig
from .errors import RunStoreError
from .train import final_row, read_history, train_run


@dataclass
class Run:
    id: str
    dir: Path
    config: RunConfig
    history: list[dict]
    metrics: dict

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    def row(self, epochs: int) -> dict:
        """The report's columns at epoch ``epochs`` (1-based)."""
        if epochs > len(self.history):
            raise RunStoreError(f"{self.dir}: has {len(self.history)} epochs, {epochs} were asked for; train it further first")
        return final_row(self.history[epochs - 1])

    def evaluation(self, epochs: int) -> dict | None:
        return self.metrics.get("evaluations", {}).get(str(epochs))

    def model_path(self, epochs: int | None = None) -> Path:
        if epochs is None:
            kept = sorted(self.dir.glob("model-e*.keras"))
            if not kept:
                raise RunStoreError(f"{self.dir}: no kept model; train the run first")
            return kept[-1]
        return self.dir / f"model-e{epochs:04d}.keras"

    def wall_seconds(self, epochs: int | None = None) -> float:
        rows = self.history if epochs is None else self.history[:epochs]
        return float(sum(r["seconds"] for r in rows))


class RunStore:
    def __init__(self, root=None):
        self.root = Path(root) if root is not None else paths.RUNS_DIR

    def path(self, cfg: RunConfig) -> Path:
        return self.root / cfg.run_id

    def ensure(self, cfg: RunConfig, epochs: int, data, keep_epochs=(), verbose=True) -> Run:
        """The run of ``cfg`` with at least ``epochs`` epochs, training only what is missing."""
        train_run(self.path(cfg), cfg, data, epochs, keep_epochs=keep_epochs, verbose=verbose)
        return self.load(cfg.run_id)

    def epochs_done(self, cfg: RunConfig) -> int:
        return len(read_history(self.path(cfg)))

    def load(self, run_id: str) -> Run:
        d = self.root / run_id
        cfg_path = d / "config.json"
        if not cfg_path.exists():
            raise RunStoreError(f"{d}: no such run (no config.json); list runs with 'fer runs' or train it first")
        cfg = RunConfig.from_dict(json.loads(cfg_path.read_text()))
        metrics_path = d / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {"evaluations": {}}
        return Run(run_id, d, cfg, read_history(d), metrics)

    def get(self, cfg: RunConfig) -> Run | None:
        return self.load(cfg.run_id) if (self.path(cfg) / "config.json").exists() else None

    def runs(self) -> list[Run]:
        if not self.root.exists():
            return []
        return [self.load(p.name) for p in sorted(self.root.iterdir()) if (p / "config.json").exists()]
