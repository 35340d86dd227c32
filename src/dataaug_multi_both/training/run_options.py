"""How a training run is asked for (`RunOptions`) and what it gives back (`TrainingResult`):
the recipe's interface to `train`, `hpo` trials and torchrun."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dataaug_multi_both.data.splits import SplitManifest
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
    best_value: float
    best_epoch: int
    history: list[dict[str, float]]
    stopped_early: bool = False  # on_epoch_end asked to stop (a pruned HPO trial)

    @classmethod
    def of(
        cls, trial_dir: Path, metric_name: str, history: list[dict[str, Any]], stopped_early: bool
    ) -> TrainingResult:
        """The best epoch of `history` by `metric_name` (the earlier on ties; NaN if none)."""
        values = [h.get(metric_name) for h in history]
        finite = [(v, -i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
        best_value, neg_index = max(finite) if finite else (math.nan, 0)
        return cls(trial_dir, metric_name, best_value, -neg_index + 1, history, stopped_early)
