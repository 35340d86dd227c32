"""One Optuna trial = one training run with the sampled values.

Each epoch's optimization metric is reported to Optuna and the pruner is asked; a pruned
trial ends as PRUNED. A trial that fails on its own (NaN loss, out of memory, a model that
cannot be loaded, an invalid sampled config) ends as FAIL with the reason as a user
attribute, and the study goes on. Errors that concern the whole study (disk exhausted,
MLflow or the study storage unreachable, SIGINT/SIGTERM) end the study.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dataaug_multi_both.config.compose import apply_values
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.data.splits import SplitManifest
from dataaug_multi_both.errors import (
    ConfigError,
    DataAugError,
    DataLoadError,
    TrainingError,
)
from dataaug_multi_both.hpo.search_space import ParamSpec, sample
from dataaug_multi_both.layout import TrialPaths, study_name, study_trial_id, trial_name
from dataaug_multi_both.metric_names import objective_of
from dataaug_multi_both.training.distributed import SINGLE, Distributed
from dataaug_multi_both.training.interrupt import interrupt_signal
from dataaug_multi_both.training.launch import run_training
from dataaug_multi_both.training.reporting import TrackingContext
from dataaug_multi_both.training.run_options import RunOptions

# A trial that raises one of these fails alone; anything else of ours stops the study.
TRIAL_ERRORS = (TrainingError, DataLoadError, ConfigError)


def trial_id_for(study_id: str, number: int) -> str:
    return study_trial_id(study_id, number)


def trial_config(base: TrainConfig, values: dict[str, Any], trial_id: str) -> TrainConfig:
    """The base training config with the sampled values and the trial's id."""
    data = apply_values(base.to_dict(), {**values, "output.trial_id": trial_id})
    return TrainConfig.from_dict(data)


@dataclass
class TrialOutcome:
    number: int
    trial_id: str
    state: str = "RUNNING"
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    duration_sec: float = 0.0
    epochs: int = 0
    mlflow_run_id: str | None = None  # the trial's run, once open (tagged with its state)


@dataclass
class Objective:
    base: TrainConfig
    specs: list[ParamSpec]
    study_id: str
    metric: str
    split: SplitManifest
    console: Console
    parent_run_id: str | None = None
    storage_retry: Callable[[Callable[[], Any], str], Any] = lambda call, what: call()
    on_trial_end: Callable[[TrialOutcome], None] = lambda outcome: None
    dist: Distributed = SINGLE  # under torchrun: rank 0 runs this, the others `follow`
    stopped_by: int | None = None  # a signal that came after a trial had its result

    def __call__(self, trial: Any) -> float:
        import optuna

        number = trial.number
        trial_id = trial_id_for(self.study_id, number)
        outcome = TrialOutcome(number, trial_id)
        started = time.perf_counter()
        experiments_dir = Path(self.base.output.experiments_dir).resolve()
        self.storage_retry(lambda: trial.set_user_attr("trial_id", trial_id), "record the trial id")
        self.storage_retry(
            lambda: trial.set_user_attr(
                "trial_dir", str(TrialPaths.of(experiments_dir, trial_id).root)
            ),
            "record the trial directory",
        )
        try:
            values = sample(trial, self.specs)
            outcome.params = dict(trial.params)
            config = trial_config(self.base, values, trial_id)
            self.console.print(
                f"[bold]trial {number}[/bold] ({trial_name(trial_id)}): "
                + ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()),
                highlight=False,
            )
            self.dist.broadcast({"kind": "trial", "config": config.to_dict(), "split": self.split})
            result = run_training(config, self._options(trial, config, outcome))
            outcome.epochs = len(result.history)
            if result.stopped_early:
                outcome.state = "PRUNED"
                raise optuna.TrialPruned(f"pruned after epoch {outcome.epochs}")
            outcome.state, outcome.value = "COMPLETE", result.objective
            if math.isnan(result.best_value):
                raise TrainingError(f"{self.metric} was undefined at every epoch")
            return float(result.objective)  # a loss as its negative: studies maximise
        except TRIAL_ERRORS as exc:
            # this trial alone failed: FAIL it (a NaN value does) and let the study go on
            self._record_failure(trial, outcome, exc.message)
            return math.nan
        except DataAugError as exc:
            self._record_failure(trial, outcome, exc.message)
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM outside training: runs again
            name = signal.Signals(interrupt_signal(exc)).name
            self._record_failure(trial, outcome, f"interrupted by {name} outside training")
            raise
        finally:
            outcome.duration_sec = time.perf_counter() - started
            gc.collect()  # free the trial's model and optimizer before the next one
            _empty_cuda_cache()
            try:
                self.on_trial_end(outcome)
            except KeyboardInterrupt as exc:
                if outcome.state not in ("COMPLETE", "PRUNED"):
                    raise
                # the trial has its result: Optuna records it, the study stops after it
                self.stopped_by = interrupt_signal(exc)

    def _record_failure(self, trial: Any, outcome: TrialOutcome, reason: str) -> None:
        outcome.state, outcome.reason = "FAIL", reason
        self.storage_retry(lambda: trial.set_user_attr("fail_reason", reason), "record the failure")

    def _options(self, trial: Any, config: TrainConfig, outcome: TrialOutcome) -> RunOptions:
        def report(position: int, metrics: dict[str, Any]) -> bool:
            """`position`: the epoch, or the optimizer step with trainer.eval_steps."""
            value = objective_of(self.metric, metrics.get(self.metric))
            if value is None or math.isnan(value):
                return False
            self.storage_retry(
                lambda: trial.report(float(value), position), f"report step {position}"
            )
            return bool(self.storage_retry(trial.should_prune, "ask the pruner"))

        def decide(position: int, metrics: dict[str, Any]) -> bool:
            return bool(self.dist.broadcast(report(position, metrics)))  # the ranks stop together

        tags = {
            "study_id": study_name(self.study_id),
            "trial_number": str(trial.number),
            "trial_id": trial_name(outcome.trial_id),
        }
        return RunOptions(
            split=self.split,
            console=self.console,
            verbose=False,
            on_epoch_end=decide,
            dist=self.dist,
            elastic=False,
            tracking=TrackingContext(
                run_name=f"trial_{trial.number:03d}_{config.model.model_id}",
                tags=tags,
                parent_run_id=self.parent_run_id,
                on_start=lambda run_id: setattr(outcome, "mlflow_run_id", run_id),
            ),
        )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def with_base(base: TrainConfig, experiments_dir: Path) -> TrainConfig:
    """Trials live next to the study: the same experiments root."""
    output = dataclasses.replace(base.output, experiments_dir=str(experiments_dir))
    return dataclasses.replace(base, output=output)


def follow(dist: Distributed, console: Console) -> int:
    """A torchrun rank other than 0 in `hpo`: run each trial rank 0 announces as its part of
    the data-parallel job, stop with rank 0's pruning decisions, until rank 0 says done."""
    while True:
        message = dist.broadcast(None)
        if message["kind"] == "done":
            return int(message["exit_code"])
        options = RunOptions(
            split=message["split"],
            console=console,
            verbose=False,
            on_epoch_end=lambda epoch, metrics: bool(dist.broadcast(None)),
            dist=dist,
            elastic=False,
        )
        try:
            run_training(TrainConfig.from_dict(message["config"]), options)
        except TRIAL_ERRORS:
            continue  # rank 0 met the same error and records the trial as FAIL
        except DataAugError as exc:
            return exc.exit_code
