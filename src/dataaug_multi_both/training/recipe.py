"""The training recipe: setup, train, save_checkpoint, cleanup.

One `TrainingRecipe` is one training run (a standalone `train` or one HPO trial). Each
`_setup_<thing>` takes only its own slice of the configuration.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.checkpointing import lock as trial_lock
from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.checkpointer import Checkpointer
from dataaug_multi_both.checkpointing.policy import RESUME, is_new_best
from dataaug_multi_both.checkpointing.store import CheckpointStore
from dataaug_multi_both.config.schema import ModelConfig, TrainConfig, TrainerConfig
from dataaug_multi_both.data.pipeline import PreparedData, prepare_data
from dataaug_multi_both.data.splits import MANIFEST_NAME, SplitManifest
from dataaug_multi_both.errors import Interrupted, TrainingError
from dataaug_multi_both.metric_names import resolve_metric_name
from dataaug_multi_both.model.encoder import (
    load_encoder,
    load_tokenizer,
    quiet_hugging_face,
    resolve_model_id,
)
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.stamps import new_run_id
from dataaug_multi_both.training.distributed import (
    SINGLE,
    Distributed,
)
from dataaug_multi_both.training.interrupt import StopRequest
from dataaug_multi_both.training.loop import EpochContext, Optimisation, train_epoch
from dataaug_multi_both.training.progress import metrics_table
from dataaug_multi_both.training.reporting import TrackingBridge, TrackingContext
from dataaug_multi_both.training.run_checkpoints import RunCheckpoints
from dataaug_multi_both.training.run_log import NullRunLog, RunLog
from dataaug_multi_both.training.run_state import (
    EPOCH_EVENTS,
    ResumePoint,
    TrainingProgress,
    reconcile_run_log,
    require_same_training_config,
    select_resume_checkpoint,
    training_config_hash,
    trial_dir_of,
)
from dataaug_multi_both.training.schedule import (
    build_optimizer,
    build_scheduler,
    steps_per_epoch,
)
from dataaug_multi_both.training.seeding import (
    capture_rng_state,
    restore_rng_state,
    seed_everything,
)
from dataaug_multi_both.training.thresholds import (
    DecisionThreshold,
    fixed_threshold,
)
from dataaug_multi_both.training.validation import summarise_data, validate


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


class TrainingRecipe:
    def __init__(self, config: TrainConfig, options: RunOptions) -> None:
        self.config = config
        self.options = options
        self.console = options.console
        self.metric_name = resolve_metric_name(config.trainer.optimization_metric)
        self.progress = TrainingProgress()  # epoch, step, history, trial id, MLflow run
        self.resume: ResumePoint | None = None
        self.checkpoints = RunCheckpoints(None, Path())  # replaced in setup unless --dry-run
        self.stop = StopRequest()
        self.dist = options.dist
        self._notes: set[str] = set()
        self._group_notes: dict[str, str] = {}
        setting = config.trainer.decision_threshold  # replaced by each validation's choice
        self.threshold: DecisionThreshold = fixed_threshold(
            setting if isinstance(setting, float) else 0.5, config.model.num_criteria_classes
        )

    def _info(self, message: str) -> None:
        """Set-up details: shown for a standalone run, not for each trial of a study."""
        if self.options.verbose:
            self.console.print(message, highlight=False)

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        quiet_hugging_face()
        if self.options.resume_from is not None:
            self.resume = select_resume_checkpoint(self.options.resume_from)
            for warning in self.resume.warnings:
                self.console.print(f"warning: {warning}", highlight=False)
            require_same_training_config(self.config.to_dict(), self.resume.payload[ckpt.CONFIG])
        self._setup_runtime(self.config.trainer)
        seed_everything(self.config.seeds)
        self.tracking = TrackingBridge(
            self.config if self.dist.is_main else _without_tracking(self.config),
            self._experiments_root(),
        )
        seconds: dict[str, float] = {}
        with _timed(seconds, "run_dir"):
            self._setup_run_dir()
            self._setup_checkpointing()
        with _timed(seconds, "tracking"):
            self._setup_tracking()
        with _timed(seconds, "tokenizer"):
            self._setup_tokenizer(self.config.model)
        with _timed(seconds, "data"):
            self._setup_data()
        with _timed(seconds, "model"):
            self._setup_model(self.config.model)
            self._setup_optimizer(self.config.trainer)
        if self.resume is not None:
            with _timed(seconds, "restore"):
                self._restore(self.resume.payload)
        self.log.write(
            "setup",
            epoch=self.progress.epoch,
            seconds=seconds,
            feature_cache_hit=self.data.cache_hit,
        )

    def _setup_runtime(self, trainer: TrainerConfig) -> None:
        if trainer.num_threads:
            torch.set_num_threads(trainer.num_threads)
        wanted = trainer.device
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise TrainingError(f"trainer.device is {trainer.device!r} but CUDA is not available")
        self.device = self.dist.device(torch.device(wanted))
        self.amp_dtype = torch.bfloat16 if trainer.precision == "bf16" else torch.float16
        self.use_amp = trainer.mixed_precision and self.device.type == "cuda"
        if trainer.mixed_precision and not self.use_amp:
            self._info("note: trainer.mixed_precision has no effect on CPU; training in fp32")
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )

    def _setup_run_dir(self) -> None:
        if self.resume is not None:  # the same trial directory and log continue
            self.progress.load_state_dict(self.resume.payload)  # trial, epoch, step, run
            self.trial_dir = trial_dir_of(self.resume.path)
            default_checkpoints = self.resume.path.resolve().parent
        else:  # under torchrun every rank takes rank 0's id
            self.progress.trial_id = self.dist.broadcast(
                self.options.elastic_trial_id or self.config.output.trial_id or new_run_id()
            )
            self.trial_dir = (
                Path(self.config.output.experiments_dir).resolve()
                / f"trial_{self.progress.trial_id}"
            )
            default_checkpoints = self.trial_dir / "checkpoints"
        self.experiments_dir = self.trial_dir.parent
        self.checkpoint_dir = (self.options.checkpoint_dir or default_checkpoints).resolve()
        if not self.dist.is_main:  # only rank 0 writes the run directory
            self.log: RunLog = NullRunLog(self.trial_dir / "logs" / "train.jsonl")
            return
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        trial_lock.acquire(self.trial_dir)  # cleanup leaves a running trial alone
        self.log = RunLog(self.trial_dir / "logs" / "train.jsonl")
        if self.resume is None:
            self._forget_unfinished_attempt()
        resolved = yaml.safe_dump(self.config.to_dict(), sort_keys=False)
        atomic_write_text(self.trial_dir / "config.yaml", resolved)
        self._info(f"run directory: {self.trial_dir}")
        if self.dist.enabled:
            self._info(
                f"data parallel: {self.dist.world_size} processes, effective batch "
                f"{self.config.trainer.batch_size * self.dist.world_size * self.config.trainer.gradient_accumulation_steps}"
            )

    def _forget_unfinished_attempt(self) -> None:
        """A fresh start in a trial directory whose earlier attempt was killed before any
        resume checkpoint: its epoch lines describe training that starts over now."""
        records = self.log.records()
        stale = sorted({r["epoch"] for r in records if r.get("event") == "epoch_end"})
        if stale:
            self.log.rewrite([r for r in records if r.get("event") not in EPOCH_EVENTS])
            self.log.write("restart", epoch=0, dropped_epochs=stale)

    def _setup_checkpointing(self) -> None:
        if self.options.dry_run or not self.dist.is_main:
            return
        store = CheckpointStore(
            self.checkpoint_dir, self.progress.trial_id, self.metric_name, self.trial_dir
        )
        for path in store.remove_stray_temp_files():
            self.log.write("checkpoint", action="removed_temp_file", file=path.name)
        self.checkpoints = RunCheckpoints(
            Checkpointer(store, self.config.retention, self._report_checkpoint),
            self.checkpoint_dir,
        )

    def _experiments_root(self) -> Path:
        if self.resume is not None:
            return trial_dir_of(self.resume.path).parent
        return Path(self.config.output.experiments_dir).resolve()

    def _setup_tracking(self) -> None:
        run_id = self.progress.mlflow_run_id  # the resumed run's, or None
        self.progress.mlflow_run_id = self.tracking.start(
            run_id, self.progress.trial_id, self.options.tracking
        )
        if self.progress.mlflow_run_id:
            self._info(f"MLflow run {self.progress.mlflow_run_id} at {self.tracking.uri}")

    def _report_checkpoint(self, action: str, **fields: Any) -> None:
        epoch = fields.pop("epoch", None)
        self.log.write("checkpoint", epoch=epoch, action=action, **fields)
        if action == "warning":
            self.console.print(f"warning: {fields['message']}")

    def _setup_tokenizer(self, model: ModelConfig) -> None:
        self.encoder_source = resolve_model_id(model.model_id)
        self.tokenizer = load_tokenizer(self.encoder_source, model.revision)

    def _setup_data(self) -> None:
        dataset = self.config.dataset
        manifest_path = self.trial_dir / MANIFEST_NAME
        split = self.options.split
        if split is None and manifest_path.is_file():
            split = SplitManifest.read(manifest_path)
        cache_dir = (
            Path(dataset.cache_dir)
            if dataset.cache_dir
            else self.experiments_dir / ".cache" / "features"
        )
        self.data: PreparedData = prepare_data(
            dataset, self.config.model.num_criteria_classes, self.tokenizer, cache_dir, split
        )
        if self.dist.is_main:
            atomic_write_text(manifest_path, json.dumps(self.data.split.to_dict(), indent=1))
        summary = summarise_data(self.data)
        if self.resume is None:
            self.log.write("data", **summary.record(), feature_cache_hit=self.data.cache_hit)
        for line in summary.lines():
            self._info(line)

    def _setup_model(self, model: ModelConfig) -> None:
        encoder = load_encoder(self.encoder_source, model.revision)
        self.model = DualHeadModel(encoder, model.dropout, model.pooling)
        self.model.set_criteria_prior(float(self.data.tables["train"].label.mean()))
        self.model.to(self.device)
        self.num_parameters = sum(p.numel() for p in self.model.parameters())
        self.trained_model: torch.nn.Module = self.model  # what the training steps call
        if self.dist.enabled:
            self.trained_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    def _setup_optimizer(self, trainer: TrainerConfig) -> None:
        self.optimizer = build_optimizer(self.model, trainer, self.device)
        self.steps_per_epoch = steps_per_epoch(
            len(self.data.tables["train"]), trainer, self.dist.world_size
        )
        self.scheduler = build_scheduler(self.optimizer, self.steps_per_epoch, trainer)
        self.opt = Optimisation(
            self.trained_model, self.optimizer, self.scheduler, self.scaler, self.progress
        )

    # ------------------------------------------------------------ run state
    def _state(self, metrics: dict[str, Any], copy: bool) -> dict[str, Any]:
        """The resume payload of the epoch just finished; `copy` snapshots every tensor to
        the CPU (needed when the payload must outlive further training steps)."""

        def cpu(value: Any) -> Any:
            return _to_cpu(value) if copy or self.device.type != "cpu" else value

        return {
            ckpt.FORMAT_VERSION: ckpt.CURRENT_FORMAT,
            ckpt.KIND: RESUME,
            **self.progress.state_dict(),
            ckpt.MODEL: cpu(self.model.state_dict()),
            ckpt.MODEL_ARGS: {
                "model_id": self.config.model.model_id,
                "revision": self.config.model.revision,
                "encoder_config": json.dumps(self.model.encoder.config.to_dict(), default=str),
            },
            ckpt.OPTIMIZER: cpu(self.optimizer.state_dict()),
            ckpt.SCHEDULER: self.scheduler.state_dict(),
            ckpt.SCALER: self.scaler.state_dict(),
            ckpt.RNG: capture_rng_state(),
            ckpt.CONFIG: self.config.to_dict(),
            ckpt.CONFIG_HASH: training_config_hash(self.config.to_dict()),
            ckpt.METRICS: dict(metrics),
            ckpt.TRIAL_DIR: str(self.trial_dir),
            ckpt.WEIGHTS_DTYPE: "float32",
            ckpt.DECISION_THRESHOLD: self.threshold.as_dict(self.data.pairs.criteria),
        }

    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload[ckpt.MODEL])
        self.optimizer.load_state_dict(payload[ckpt.OPTIMIZER])
        self.scheduler.load_state_dict(payload[ckpt.SCHEDULER])
        self.scaler.load_state_dict(payload[ckpt.SCALER])
        restore_rng_state(payload[ckpt.RNG])
        checkpointer = self.checkpoints.checkpointer
        manifest = checkpointer.store.manifest if checkpointer else None
        records = self.log.records()
        if manifest is not None:
            records, replayed = reconcile_run_log(records, self.progress.epoch, manifest)
            self.log.rewrite(records)
        else:
            replayed = []
        self.progress.history = [
            r["metrics"]
            for r in sorted(records, key=lambda r: r["epoch"] or 0)
            if r["event"] == "epoch_end"
        ]
        self.log.write(
            "resume",
            epoch=self.progress.epoch,
            step=self.progress.global_step,
            checkpoint=str(self.resume.path if self.resume else ""),
            replayed_epochs=replayed,
        )
        self.console.print(
            f"resumed from {self.resume.path if self.resume else ''} at epoch {self.progress.epoch}"
            + (f"; replaying epoch(s) {', '.join(map(str, replayed))}" if replayed else "")
        )
        sent = self.tracking.send_missing(self.progress.history)
        if sent:
            self.log.write("tracking_backfill", epoch=self.progress.epoch, epochs=sent)
            self.console.print(
                f"sent epoch(s) {', '.join(map(str, sent))} that MLflow had not received"
            )

    # ----------------------------------------------------------------- train
    def train(self) -> TrainingResult:
        trainer = self.config.trainer
        if self.resume is None:
            self.log.write(
                "run_start",
                epoch=self.progress.epoch,
                step=self.progress.global_step,
                trial_id=self.progress.trial_id,
                model_id=self.config.model.model_id,
                parameters=self.num_parameters,
                device=str(self.device),
            )
        with StopRequest() as stop:
            self.stop = stop
            while self.progress.epoch < trainer.max_epochs:
                started = time.perf_counter()
                epoch_data, augmented = self._epoch_data(self.progress.epoch + 1)
                train_metrics, stats = train_epoch(
                    self._epoch_context(), epoch_data, self.progress.epoch + 1
                )
                evaluated = time.perf_counter()
                metrics = {**train_metrics, **augmented, **self._evaluate()}
                eval_sec = time.perf_counter() - evaluated
                self.progress.epoch += 1
                metrics["system/epoch_duration_sec"] = time.perf_counter() - started
                metrics["system/disk_free_gb"] = shutil.disk_usage(self.trial_dir).free / 1e9
                saving = time.perf_counter()
                size = self.save_checkpoint(metrics)
                self.dist.barrier()  # no rank runs ahead of rank 0's save
                checkpoint_sec = time.perf_counter() - saving
                if size is not None:
                    metrics["system/checkpoint_size_mb"] = size / 1e6
                self.progress.history.append(metrics)
                timing = {
                    **stats.as_dict(),
                    "eval_sec": round(eval_sec, 4),
                    "checkpoint_sec": round(checkpoint_sec, 4),
                }
                self.log.write(
                    "epoch_end",
                    epoch=self.progress.epoch,
                    step=self.progress.global_step,
                    metrics=metrics,
                    decision_threshold=self.threshold.as_dict(self.data.pairs.criteria),
                    timing=timing,
                )
                self._show_epoch(metrics)
                self.tracking.log_epoch(self.progress.epoch, metrics, self._resume_hint)
                if stop.requested:
                    self._stop_safely()
                if self.options.on_epoch_end and self.options.on_epoch_end(
                    self.progress.epoch, metrics
                ):
                    self.log.write(
                        "stopped_early", epoch=self.progress.epoch, step=self.progress.global_step
                    )
                    self.checkpoints.writer.wait()
                    return self._result(stopped_early=True)
        self.checkpoints.writer.wait()
        return self._result()

    def _epoch_context(self) -> EpochContext:
        return EpochContext(
            self.opt,
            self.config.trainer,
            self.config.model.task_weights,
            self.config.seeds.torch or 0,
            self.device,
            self._autocast,
            self._before_step,
            self.console,
            self.options.verbose,
            self.dist,
        )

    def _epoch_data(self, epoch: int) -> tuple[PreparedData, dict[str, float]]:
        """The training data of `epoch`: augmented afresh when `augmentation.*` asks for it
        (training split only), else the prepared data."""
        config = self.config.augmentation
        if not config.enabled:
            return self.data, {}
        from dataaug_multi_both.data.epoch_augmentation import augment_training_split

        dataset = self.config.dataset
        started = time.perf_counter()
        data, stats = augment_training_split(
            self.data,
            config,
            self.tokenizer,
            dataset.max_length,
            dataset.doc_stride,
            self.config.seeds.python or 0,
            epoch,
        )
        self.log.write(
            "augmentation",
            epoch=epoch,
            windows=len(data.tables["train"]),
            seconds=round(time.perf_counter() - started, 3),
            stats=stats.as_dict(),
        )
        return data, {"train/augmentation/augmented_examples": float(stats.augmented_examples)}

    def _show_epoch(self, metrics: dict[str, Any]) -> None:
        max_epochs = self.config.trainer.max_epochs
        if self.options.verbose:
            self.console.print(
                metrics_table(
                    self.progress.epoch, max_epochs, metrics, self.metric_name, self._group_notes
                )
            )
            return
        value = metrics.get(self.metric_name)
        shown = "n/a" if value is None or math.isnan(value) else f"{value:.4f}"
        self.console.print(
            f"  trial {self.progress.trial_id} epoch {self.progress.epoch}/{max_epochs}: {self.metric_name} {shown} "
            f"(train loss {metrics['train/criteria_matcher/loss'] + metrics['train/evidence_binder/loss']:.4f}, "
            f"{metrics['system/epoch_duration_sec']:.0f}s)"
        )

    def save_checkpoint(self, metrics: dict[str, Any]) -> int | None:
        """The epoch just finished, to disk if the retention policy wants it (bytes, or None)."""
        value = metrics.get(self.metric_name)
        history = [h.get(self.metric_name) for h in self.progress.history]
        return self.checkpoints.save_epoch(
            self.progress.epoch,
            self.progress.global_step,
            value,
            metrics,
            is_new_best(value, history),
            self.progress.epoch == self.config.trainer.max_epochs,
            lambda copy: self._state(metrics, copy),
        )

    def _resume_hint(self) -> str:
        latest = self.checkpoints.latest_resume()
        if latest is None:
            return f"epoch {self.progress.epoch} is in {self.log.path}; nothing to resume from (--dry-run)"
        return (
            f"epoch {self.progress.epoch} is saved; once the server is back, resume with: "
            f"python -m dataaug_multi_both.cli.train --resume-from {latest}"
        )

    def _stop_safely(self) -> None:
        """After SIGINT/SIGTERM: make sure the last finished epoch is on disk as a resume
        checkpoint, then stop with a message that says how to resume."""
        self.checkpoints.writer.wait()
        signum = self.stop.signum or signal.SIGINT
        if not self.dist.is_main:
            raise Interrupted(f"rank {self.dist.rank} stopped by {self.stop.name}", signum)
        if not self.checkpoints.enabled:
            raise Interrupted(
                f"interrupted by {self.stop.name} after epoch {self.progress.epoch} (--dry-run: nothing saved)",
                signum,
            )
        self.checkpoints.save_unsaved(self.metric_name)
        where = self.checkpoints.latest_resume() or self.checkpoint_dir
        self.log.write(
            "interrupted",
            epoch=self.progress.epoch,
            step=self.progress.global_step,
            signal=self.stop.name,
        )
        error = Interrupted(
            f"interrupted by {self.stop.name}; epoch {self.progress.epoch} is saved. Resume with: "
            f"python -m dataaug_multi_both.cli.train --resume-from {where}",
            signum,
        )
        raise error

    def _before_step(self) -> None:
        if self.dist.any(self.stop.requested):
            if not self.stop.requested:  # another rank got the signal: stop as it does
                self.stop.signum = signal.SIGTERM
            self._stop_safely()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.use_amp:
            return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _evaluate(self) -> dict[str, float | None]:
        result = validate(
            self.model, self.data, self.config.trainer, self.device, self._autocast, self.dist
        )
        self.threshold, self._group_notes = result.threshold, result.group_notes
        for note in result.notes:
            if note not in self._notes:  # once per run
                self._notes.add(note)
                self.log.write("note", epoch=self.progress.epoch + 1, message=note)
                self._info(f"note: {note}")
        return result.metrics

    def _result(self, stopped_early: bool = False) -> TrainingResult:
        values = [h.get(self.metric_name) for h in self.progress.history]
        finite = [(v, -i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
        best_value, neg_index = max(finite) if finite else (math.nan, 0)
        return TrainingResult(
            self.trial_dir,
            self.metric_name,
            best_value,
            -neg_index + 1,
            self.progress.history,
            stopped_early,
        )

    # --------------------------------------------------------------- cleanup
    def finish_tracking(self) -> None:
        artifacts = [self.trial_dir / "config.yaml", self.trial_dir / MANIFEST_NAME, self.log.path]
        self.tracking.finish("FINISHED", artifacts, self.checkpoints.best())

    def cleanup(self) -> None:
        try:  # a write still pending after a failure: let it finish, note its error
            self.checkpoints.close()
        except Exception as exc:
            self.log.write(
                "checkpoint", epoch=self.progress.epoch, action="write_failed", error=str(exc)
            )
        self.log.write("run_end", epoch=self.progress.epoch, step=self.progress.global_step)
        if self.dist.is_main:
            trial_lock.release(self.trial_dir)


@contextlib.contextmanager
def _timed(seconds: dict[str, float], name: str) -> Any:
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = round(time.perf_counter() - started, 4)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def _without_tracking(config: TrainConfig) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(
        config, tracking=dataclasses.replace(config.tracking, backend="none")
    )
