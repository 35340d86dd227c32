"""How a training run is asked for (`RunOptions`) and what it gives back (`TrainingResult`):
the recipe's interface to `train`, `hpo` trials and torchrun."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dataaug_multi_both.checkpointing.policy import best_position
from dataaug_multi_both.data.splits import SplitManifest
from dataaug_multi_both.metric_names import metric_sign, objective_of
from dataaug_multi_both.training.distributed import SINGLE, Distributed
from dataaug_multi_both.training.reporting import TrackingContext


@dataclass
class RunOptions:
    dry_run: bool = False
    checkpoint_dir: Path | None = None
    resume_from: Path | None = None
    split: SplitManifest | None = None  # a study's shared split; None = make or reuse the trial's
    tracking: TrackingContext = field(default_factory=TrackingContext)
    console: Console = field(default_factory=Console)
    verbose: bool = True  # False: one line per epoch instead of the metric table
    # called after each epoch is saved and logged; returning True stops training (pruning)
    on_epoch_end: Callable[[int, dict[str, Any]], bool] | None = None
    dist: Distributed = SINGLE  # this process's place in a torchrun job
    elastic_trial_id: str | None = None  # the trial of this torchrun job (all its attempts)
    elastic: bool = True  # resume automatically after a torchrun restart (not for HPO trials)


@dataclass
class TrainingResult:
    trial_dir: Path
    metric_name: str
    best_value: float  # the metric's value at the best epoch (NaN if none)
    best_epoch: int
    history: list[dict[str, float]]
    stopped_early: bool = False  # on_epoch_end asked to stop (a pruned HPO trial)
    early_stopping: str | None = None  # why early stopping ended the run, if it did

    @property
    def objective(self) -> float:
        """What a study maximises: the best value, or its negative for a loss."""
        return metric_sign(self.metric_name) * self.best_value

    @classmethod
    def of(
        cls,
        trial_dir: Path,
        metric_name: str,
        history: list[dict[str, Any]],
        stopped_early: bool,
        early_stopping: str | None = None,
    ) -> TrainingResult:
        """The best epoch of `history` by `metric_name` (lowest for a loss, the earlier on
        ties; NaN if none)."""
        scores = [objective_of(metric_name, h.get(metric_name)) for h in history]
        best = best_position(scores)
        value = math.nan if best is None else history[best][metric_name]
        return cls(
            trial_dir,
            metric_name,
            value,
            (best or 0) + 1,
            history,
            stopped_early,
            early_stopping,
        )
