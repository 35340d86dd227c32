"""Between the training loop and experiment tracking: what a run sends to MLflow and when.

Nothing is lost: every epoch is in `train.jsonl` before it is sent; a resumed run first
sends the epochs MLflow does not have (it asks MLflow which steps exist, so nothing is sent
twice), then continues.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import TrackingError
from dataaug_multi_both.layout import trial_name
from dataaug_multi_both.metric_names import resolve_metric_name
from dataaug_multi_both.training.run_state import flatten


@dataclass(frozen=True)
class TrackingContext:
    """Where a run belongs: set by `hpo` for the trials of a study."""

    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    parent_run_id: str | None = None
    on_start: Callable[[str], None] | None = None  # told the run's id once it is open


# The contract's param names, each the short name of one config key: logged under the
# contract's name only, every other key under its dotted name (each value once).
CONTRACT_PARAMS = {
    "model_id": "model.model_id",
    "model_revision": "model.revision",
    "dataset_id": "dataset.dataset_id",
    "dataset_revision": "dataset.revision",
    "learning_rate": "trainer.learning_rate",
    "batch_size": "trainer.batch_size",
    "max_epochs": "trainer.max_epochs",
    "optimization_metric": "trainer.optimization_metric",
    "seed_python": "seeds.python",
    "seed_numpy": "seeds.numpy",
    "seed_torch": "seeds.torch",
    "task_weight_criteria": "model.task_weights.criteria_matcher",
    "task_weight_evidence": "model.task_weights.evidence_binder",
}


def run_params(config: TrainConfig) -> dict[str, Any]:
    """The contract's param names, then every other config key flattened, each once
    (tracking.* left out: it describes where results go, not the run)."""
    flat = flatten(config.to_dict())
    params = {name: flat[key] for name, key in CONTRACT_PARAMS.items()}
    aliased = set(CONTRACT_PARAMS.values())
    for key, value in flat.items():
        if not key.startswith("tracking.") and key not in aliased:
            params[key] = value
    return params


class TrackingBridge:
    """Owns the optional `RunTracker`; all tracking errors carry the resume hint.

    Constructing it connects: an unreachable server or Vault is exit 5 here, before any
    file of the run is written.
    """

    def __init__(self, config: TrainConfig, experiments_dir: Path) -> None:
        self.config = config
        self.tracker = None
        self._on_server: set[int] = set()  # steps the server had when the run resumed
        self._reopened = False  # the run existed: step records it has are not sent again
        self._step_floor: int | None = None  # the last optimizer step the reopened run has
        self._steps_paused = False  # the server failed a step record: wait for an epoch
        self._epochs: dict[int, Mapping[str, Any]] = {}  # what the run has, for `best/`
        if config.tracking.backend == "mlflow":
            from dataaug_multi_both.tracking.mlflow_logger import RunTracker

            self.tracker = RunTracker(config.tracking, experiments_dir)
            self.experiment_id = self.tracker.experiment_id()

    @property
    def enabled(self) -> bool:
        return self.tracker is not None

    @property
    def uri(self) -> str:
        return self.tracker.where if self.tracker else ""

    def start(self, run_id: str | None, trial_id: str, context: TrackingContext) -> str | None:
        if self.tracker is None:
            return None
        name = context.run_name or f"{self.config.model.model_id}-{trial_id}"
        tags = {"trial_id": trial_name(trial_id), **context.tags}
        started = self.tracker.start(
            run_id, name, run_params(self.config), tags, context.parent_run_id
        )
        self._reopened = run_id is not None and started == run_id
        if context.on_start is not None:
            context.on_start(started)
        return started

    def send_missing(self, history: Sequence[Mapping[str, Any]]) -> list[int]:
        """After a resume: send the epochs of `history` (epoch order) that MLflow lacks."""
        if self.tracker is None or not history:
            return []
        self._epochs.update(enumerate(history, start=1))
        present = self.tracker.logged_steps()
        self._on_server = present
        missing = [epoch for epoch in range(1, len(history) + 1) if epoch not in present]
        for epoch in missing:
            self.tracker.log_metrics(epoch, history[epoch - 1])
        return missing

    def log_epoch(
        self, epoch: int, metrics: Mapping[str, Any], resume_hint: Callable[[], str]
    ) -> None:
        """`resume_hint` is called only when the server is gone (it waits for the epoch's
        checkpoint to be on disk, so that the hint can promise it)."""
        if self.tracker is None:
            return
        self._epochs[epoch] = metrics
        if epoch in self._on_server:
            return  # a replayed epoch the server got before a crash (same values on CPU)
        try:
            self.tracker.log_metrics(epoch, metrics)
        except TrackingError as exc:
            raise TrackingError(f"{exc.message}. {resume_hint()}") from None
        self._steps_paused = False  # the server is back: step records go again

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        """Step records (`train_step/...`) at MLflow step = `step`, the global optimizer
        step, in one batch; None and non-finite values are not sent. No-op without tracking.

        Retried like an epoch, but a server still gone after the retries does not stop
        training mid-epoch: a one-line warning, and no step record is sent until an epoch
        reaches the server (the epoch's own log then decides, once its checkpoint is saved,
        whether the run stops with exit 5). `train.jsonl` has every step record. After a
        resume the steps the reopened run already has are not sent twice."""
        if self.tracker is None or self._steps_paused or not metrics:
            return
        try:
            if self._reopened and self._step_floor is None:
                present = self.tracker.logged_steps(next(iter(metrics)))
                self._step_floor = max(present, default=0)
            if self._step_floor is not None and step <= self._step_floor:
                return  # sent before the run stopped (same values on CPU)
            self.tracker.log_metrics(step, metrics)
        except TrackingError as exc:
            self._steps_paused = True
            print(
                f"warning: {exc.message}; step metrics are not sent until an epoch gets through",
                file=sys.stderr,
                flush=True,
            )

    def finish(self, status: str, artifacts: list[Path], checkpoint: Path | None) -> None:
        if self.tracker is None:
            return
        self.tracker.log_artifacts(artifacts)
        if checkpoint is not None and self.config.tracking.log_checkpoints:
            self.tracker.log_artifacts([checkpoint], artifact_path="checkpoints")
        history = [
            self._epochs.get(epoch, {}) for epoch in range(1, max(self._epochs, default=0) + 1)
        ]
        metric = resolve_metric_name(self.config.trainer.optimization_metric)
        # at step 0 each time: a resumed run's summary replaces the earlier one (latest wins)
        self.tracker.log_metrics(0, best_summary(history, metric))
        self.tracker.finish(status)

    def abandon(self, status: str) -> None:
        """Best effort after a failure: mark the run, without waiting on a dead server."""
        if self.tracker is None or self.tracker.run_id is None:
            return
        # the server may be the reason we are failing; the log has it all
        with contextlib.suppress(Exception):
            self.tracker.client.set_terminated(self.tracker.run_id, status)


def best_summary(history: Sequence[Mapping[str, Any]], metric_name: str) -> dict[str, float]:
    """`best/<name>` for every validation metric (`val/...`) of the best epoch by
    `metric_name`, and `best/epoch` (1-based). The best epoch is the one `TrainingResult`
    picks, the one Optuna is told and the study's tables show. Empty when `metric_name` was
    never defined. `history`: the epochs' metrics, epoch order."""
    from dataaug_multi_both.training.run_options import TrainingResult  # it imports this module

    result = TrainingResult.of(Path(), metric_name, [dict(h) for h in history], False)
    if math.isnan(result.best_value):
        return {}
    summary = {
        f"best/{name}": float(value)
        for name, value in history[result.best_epoch - 1].items()
        if name.startswith("val/") and value is not None and math.isfinite(float(value))
    }
    return {**summary, "best/epoch": float(result.best_epoch)}


def without_tracking(config: TrainConfig) -> TrainConfig:
    """`config` with tracking off (a torchrun rank other than 0 never talks to MLflow)."""
    import dataclasses

    return dataclasses.replace(
        config, tracking=dataclasses.replace(config.tracking, backend="none")
    )
