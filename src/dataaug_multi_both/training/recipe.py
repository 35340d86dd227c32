"""The training recipe: setup, train, save_checkpoint, cleanup.

One `TrainingRecipe` is one training run (a standalone `train` or one HPO trial). Each
`_setup_<thing>` takes only its own slice of the configuration.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import torch

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.checkpointing import lock as trial_lock
from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.discard import discard_unstarted_run
from dataaug_multi_both.checkpointing.policy import is_new_best
from dataaug_multi_both.config.schema import ModelConfig, TrainConfig, TrainerConfig
from dataaug_multi_both.data.epoch_augmentation import epoch_training_data
from dataaug_multi_both.data.pipeline import PreparedData, feature_cache_dir, prepare_data
from dataaug_multi_both.data.splits import MANIFEST_NAME, SplitManifest
from dataaug_multi_both.errors import Interrupted, first_line
from dataaug_multi_both.layout import MID_EPOCH_FILE, TrialPaths
from dataaug_multi_both.metric_names import metric_sense_label, objective_of, resolve_metric_name
from dataaug_multi_both.model.encoder import (
    enable_gradient_checkpointing,
    load_encoder,
    load_tokenizer,
    quiet_hugging_face,
    resolve_model_id,
)
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.stamps import timed
from dataaug_multi_both.training.early_stopping import early_stopping_reason
from dataaug_multi_both.training.interrupt import StopRequest
from dataaug_multi_both.training.loop import (
    EpochContext,
    EpochPosition,
    Optimisation,
    train_epoch,
)
from dataaug_multi_both.training.progress import epoch_display
from dataaug_multi_both.training.reporting import TrackingBridge, without_tracking
from dataaug_multi_both.training.run_checkpoints import RunCheckpoints, resume_command
from dataaug_multi_both.training.run_dir import open_run_directory
from dataaug_multi_both.training.run_options import RunOptions, TrainingResult
from dataaug_multi_both.training.run_state import (
    ResumePoint,
    TrainingProgress,
    require_same_training_config,
    restored_evaluations,
    restored_position,
    resume_history,
    resume_payload,
    select_resume_checkpoint,
    trial_dir_of,
)
from dataaug_multi_both.training.runtime import make_runtime
from dataaug_multi_both.training.schedule import (
    build_optimizer,
    build_scheduler,
    fast_forward,
    steps_per_epoch,
)
from dataaug_multi_both.training.seeding import restore_rng_state, seed_everything
from dataaug_multi_both.training.thresholds import DecisionThreshold, fixed_threshold
from dataaug_multi_both.training.validation import summarise_data, validate


class _EndTraining(Exception):
    """Training ends before max_epochs: pruned by the study, or early stopping (`reason`)."""

    def __init__(self, pruned: bool = False, reason: str | None = None) -> None:
        super().__init__(reason or "pruned")
        self.pruned, self.reason = pruned, reason


class TrainingRecipe:
    def __init__(self, config: TrainConfig, options: RunOptions) -> None:
        self.config = config
        self.options = options
        self.console = options.console
        self.metric_name = resolve_metric_name(config.trainer.optimization_metric)
        self.progress = TrainingProgress()  # epoch, step, history, trial id, MLflow run
        self.resume: ResumePoint | None = None
        self.position: EpochPosition | None = None  # inside an epoch, after a mid-epoch resume
        self.evaluations: list[float | None] = []  # objective of every evaluation so far
        self.checkpoints = RunCheckpoints(None, Path())  # replaced in setup unless --dry-run
        self.stop = StopRequest()
        self.dist = options.dist
        self._notes: set[str] = set()
        self._end: dict[str, str] = {"status": "FINISHED"}
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
        self.runtime = make_runtime(self.config.trainer, self.dist, self._info)
        self.device = self.runtime.device
        seed_everything(self.config.seeds)
        self.tracking = TrackingBridge(
            self.config if self.dist.is_main else without_tracking(self.config),
            self._experiments_root(),
        )
        seconds: dict[str, float] = {}
        with timed(seconds, "run_dir"):
            run_dir = open_run_directory(
                self.config, self.options, self.progress, self.resume, self._info
            )
            self.trial_dir, self.checkpoint_dir, self.log, self.created_run_dir = run_dir
            self.experiments_dir = self.trial_dir.parent
            self._setup_checkpointing()
        with timed(seconds, "tokenizer"):
            self._setup_tokenizer(self.config.model)
        with timed(seconds, "data"):
            self._setup_data()
        with timed(seconds, "model"):
            self._setup_model(self.config.model)
            self._setup_optimizer(self.config.trainer)
        with timed(seconds, "tracking"):  # opened once loading has succeeded
            self._setup_tracking()
        if self.resume is not None:
            with timed(seconds, "restore"):
                self._restore(self.resume.payload)
        self.log.write(
            "setup",
            epoch=self.progress.epoch,
            seconds=seconds,
            feature_cache_hit=self.data.cache_hit,
        )

    def _setup_checkpointing(self) -> None:
        if not self.options.dry_run and self.dist.is_main:
            self.checkpoints = RunCheckpoints.open(
                self.checkpoint_dir,
                self.progress.trial_id,
                self.metric_name,
                self.trial_dir,
                self.config.retention,
                self.log,
                self.console,
            )

    def _experiments_root(self) -> Path:
        configured = Path(self.config.output.experiments_dir).resolve()
        if self.resume is not None:
            return trial_dir_of(self.resume.path, configured).parent
        return configured

    def _setup_tracking(self) -> None:
        run_id = self.progress.mlflow_run_id  # the resumed run's, or None
        self.progress.mlflow_run_id = self.tracking.start(
            run_id, self.progress.trial_id, self.options.tracking
        )
        if self.progress.mlflow_run_id:
            self._info(f"MLflow run {self.progress.mlflow_run_id} at {self.tracking.uri}")
        if run_id and self.progress.mlflow_run_id not in (None, run_id):
            self._info(f"note: run {run_id} is not in this store; the history goes to this run")

    def _setup_tokenizer(self, model: ModelConfig) -> None:
        self.encoder_source = resolve_model_id(model.model_id)
        self.tokenizer = load_tokenizer(self.encoder_source, model.revision)

    def _setup_data(self) -> None:
        dataset = self.config.dataset
        manifest_path = self.trial_dir / MANIFEST_NAME
        split = self.options.split
        if split is None and manifest_path.is_file():
            split = SplitManifest.read(manifest_path)
        self.data: PreparedData = prepare_data(
            dataset,
            self.config.model.num_criteria_classes,
            self.tokenizer,
            feature_cache_dir(dataset, self.experiments_dir),
            split,
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
        if model.gradient_checkpointing:
            enable_gradient_checkpointing(encoder)
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
            self.trained_model, self.optimizer, self.scheduler, self.runtime.scaler, self.progress
        )

    # ------------------------------------------------------------ run state
    def _state(self, metrics: dict[str, Any], copy: bool) -> dict[str, Any]:
        """The resume payload of the epoch just finished (`copy`: tensors snapshotted)."""
        state = resume_payload(
            self.opt,
            self.config,
            self.model,
            metrics,
            self.trial_dir,
            self.threshold.as_dict(self.data.pairs.criteria),
            copy or self.device.type != "cpu",
        )
        state[ckpt.EVALUATIONS] = list(self.evaluations)
        return state

    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload[ckpt.MODEL])
        weights_only = self.resume is not None and self.resume.weights_only
        if weights_only:  # fresh optimizer; the schedule continues at the checkpoint's step
            fast_forward(self.scheduler, self.progress.global_step)
        else:
            self.optimizer.load_state_dict(payload[ckpt.OPTIMIZER])
            self.scheduler.load_state_dict(payload[ckpt.SCHEDULER])
            self.runtime.scaler.load_state_dict(payload[ckpt.SCALER])
            restore_rng_state(payload[ckpt.RNG])
            position = restored_position(payload)
            if position is not None:  # a mid-epoch checkpoint
                self.position = EpochPosition.from_state_dict(position)
        checkpointer = self.checkpoints.checkpointer
        replayed = resume_history(
            self.log, self.progress, checkpointer.store.manifest if checkpointer else None
        )
        self.evaluations = restored_evaluations(
            payload,
            [
                objective_of(self.metric_name, h.get(self.metric_name))
                for h in self.progress.history
            ],
        )
        self.log.write(
            "resume",
            epoch=self.progress.epoch,
            step=self.progress.global_step,
            checkpoint=str(self.resume.path if self.resume else ""),
            replayed_epochs=replayed,
            weights_only=weights_only,
        )
        where = (
            f"inside epoch {self.progress.epoch + 1} (after batch {self.position.batches_done}, "
            f"step {self.progress.global_step})"
            if self.position
            else f"at epoch {self.progress.epoch}"
        )
        self.console.print(
            f"resumed from {self.resume.path if self.resume else ''} {where}"
            + (f"; replaying epoch(s) {', '.join(map(str, replayed))}" if replayed else "")
        )
        sent = self.tracking.send_missing(self.progress.history)
        if sent:
            self.log.write("tracking_backfill", epoch=self.progress.epoch, epochs=sent)
            self.console.print(f"sent epoch(s) {', '.join(map(str, sent))} MLflow had missed")

    # ----------------------------------------------------------------- train
    def train(self) -> TrainingResult:
        trainer = self.config.trainer
        with StopRequest() as stop:  # before run_start: from then on Ctrl-C stops safely
            self.stop = stop
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
            try:
                while self.progress.epoch < trainer.max_epochs:
                    metrics = self._run_epoch(self.progress.epoch + 1)
                    if stop.requested:
                        self._stop_safely()
                    position = self.progress.epoch
                    if trainer.eval_steps:  # every evaluation on the step axis, epoch ends too
                        position = self.progress.global_step
                        self._log_val_step(position, metrics)
                    self._after_evaluation(position, metrics)
            except _EndTraining as end:
                self.checkpoints.drop_mid_epoch()
                return self._result(stopped_early=end.pruned, early_stopping=end.reason)
        self.checkpoints.drop_mid_epoch()
        return self._result()

    def _after_evaluation(self, position: int, metrics: dict[str, Any]) -> None:
        """After a validation (an epoch's end, or every trainer.eval_steps steps): the
        pruner's report (`position`: the epoch, or the step with eval_steps), then early
        stopping. Raises _EndTraining to stop."""
        self.evaluations.append(objective_of(self.metric_name, metrics.get(self.metric_name)))
        epoch, step = self.progress.epoch, self.progress.global_step
        report = self.options.on_epoch_end
        if report and report(position, metrics):
            self.log.write("stopped_early", epoch=epoch, step=step)
            raise _EndTraining(pruned=True)
        trainer = self.config.trainer
        if epoch == 0 or epoch == trainer.max_epochs:
            # not before the first epoch is on disk (a run leaves a model), and not when
            # the run ends anyway
            return
        reason = early_stopping_reason(
            self.evaluations,
            trainer.early_stopping_patience,
            trainer.early_stopping_threshold,
            metric_sense_label(self.metric_name),
        )
        if reason is not None:
            self.log.write("early_stopping", epoch=epoch, step=step, reason=reason)
            self._info(reason)
            raise _EndTraining(reason=reason)

    def _run_epoch(self, epoch: int) -> dict[str, Any]:
        """Train, validate, save, log and show one epoch; returns its metrics."""
        seconds: dict[str, float] = {}
        with timed(seconds, "epoch"):
            data, augmented = epoch_training_data(
                self.data, self.config, self.tokenizer, epoch, self.log
            )
            position, self.position = self.position, None
            train_metrics, stats = train_epoch(self._epoch_context(), data, epoch, position)
            with timed(seconds, "eval_sec"):
                metrics = {**train_metrics, **augmented, **self._evaluate()}
        self.progress.epoch = epoch
        metrics["system/epoch_duration_sec"] = seconds["epoch"]
        metrics["system/disk_free_gb"] = shutil.disk_usage(self.trial_dir).free / 1e9
        with timed(seconds, "checkpoint_sec"):
            size = self.save_checkpoint(metrics)
            self.dist.barrier()  # no rank runs ahead of rank 0's save
        if size is not None:
            metrics["system/checkpoint_size_mb"] = size / 1e6
        self.progress.history.append(metrics)
        self.log.write(
            "epoch_end",
            epoch=epoch,
            step=self.progress.global_step,
            metrics=metrics,
            decision_threshold=self.threshold.as_dict(self.data.pairs.criteria),
            timing={**stats.as_dict(), **{k: seconds[k] for k in ("eval_sec", "checkpoint_sec")}},
        )
        view = epoch_display(
            self.progress,
            self.config.trainer.max_epochs,
            metrics,
            self.metric_name,
            self._group_notes,
            self.options.verbose,
        )
        self.console.print(view, highlight=False)
        self.tracking.log_epoch(epoch, metrics, self._resume_hint)
        return metrics

    def _epoch_context(self) -> EpochContext:
        return EpochContext(
            self.opt,
            self.config.trainer,
            self.config.model.task_weights,
            self.config.seeds.torch or 0,
            self.device,
            self.runtime.autocast,
            self._before_step,
            self.console,
            self.options.verbose,
            self.dist,
            self._after_step,
        )

    def _after_step(
        self, position: EpochPosition, record: dict[str, float] | None, last: bool
    ) -> None:
        """After an optimizer step: the step record (trainer.logging_steps); inside an epoch
        also a validation every trainer.eval_steps and a mid-epoch resume checkpoint every
        trainer.save_steps (the epoch's last step has its own)."""
        step, epoch = self.progress.global_step, self.progress.epoch + 1
        if record is not None and self.dist.is_main:
            self.log.write("step", epoch=epoch, step=step, metrics=record)
            self.tracking.log_step(step, record)
        if last:
            return
        trainer = self.config.trainer
        if trainer.eval_steps and step % trainer.eval_steps == 0:
            metrics = self._evaluate()
            self.model.train()
            self.log.write("evaluation", epoch=epoch, step=step, metrics=metrics)
            value = metrics.get(self.metric_name)
            shown = "undefined" if value is None else f"{value:.4f}"
            self._info(f"step {step} (epoch {epoch}): {self.metric_name} {shown}")
            self._log_val_step(step, metrics)
            self._after_evaluation(step, metrics)
        if trainer.save_steps and step % trainer.save_steps == 0:
            self.checkpoints.save_mid_epoch(
                epoch, step, position.batches_done, lambda: self._mid_epoch_state(position)
            )

    def _log_val_step(self, step: int, metrics: dict[str, Any]) -> None:
        """With trainer.eval_steps: the validation metrics at the global step, as
        `val_step/...` (the epoch's `val/...` stay on the epoch axis)."""
        if self.dist.is_main:
            self.tracking.log_step(
                step,
                {
                    f"val_step/{k.removeprefix('val/')}": v
                    for k, v in metrics.items()
                    if k.startswith("val/") and v is not None
                },
            )

    def _mid_epoch_state(self, position: EpochPosition) -> dict[str, Any]:
        """The resume payload inside an epoch: the epoch's position and running sums too."""
        state = self._state({}, copy=False)
        state[ckpt.EPOCH_POSITION] = position.state_dict()
        return state

    def save_checkpoint(self, metrics: dict[str, Any]) -> int | None:
        """The epoch just finished, to disk if the retention policy wants it (bytes, or None)."""
        value = metrics.get(self.metric_name)
        score = objective_of(self.metric_name, value)
        history = [
            objective_of(self.metric_name, h.get(self.metric_name)) for h in self.progress.history
        ]
        return self.checkpoints.save_epoch(
            self.progress.epoch,
            self.progress.global_step,
            value,
            metrics,
            is_new_best(score, history),
            self.progress.epoch == self.config.trainer.max_epochs,
            lambda copy: self._state(metrics, copy),
        )

    def _resume_hint(self) -> str:
        return self.checkpoints.resume_hint(
            self.progress.epoch, self.log.path, self.config.tracking
        )

    def _stop_safely(self) -> None:
        """After SIGINT/SIGTERM: make sure the last finished epoch is on disk as a resume
        checkpoint, then stop with a message that says how to resume."""
        self.checkpoints.writer.wait()
        signum = self.stop.signum or signal.SIGINT
        if not self.dist.is_main:
            raise Interrupted(f"rank {self.dist.rank} stopped by {self.stop.name}", signum)
        name, epoch = self.stop.name, self.progress.epoch
        if not self.checkpoints.enabled:
            raise Interrupted(f"interrupted by {name} after epoch {epoch} (--dry-run)", signum)
        self.checkpoints.save_unsaved(self.metric_name)
        where = self.checkpoints.latest_resume()
        self.log.write("interrupted", epoch, self.progress.global_step, signal=name)
        if where is None:  # stopped during the first epoch (of this run): nothing to resume
            message = f"during epoch {epoch + 1}: no epoch has finished, nothing to resume yet"
        else:
            resume = resume_command(where, self.config.tracking)
            saved = f"epoch {epoch} is saved"
            if where.name == MID_EPOCH_FILE:  # trainer.save_steps: a later point is on disk
                saved = f"epoch {epoch + 1} is saved up to its last trainer.save_steps checkpoint"
            message = f"; {saved}. Resume with: {resume}"
        raise Interrupted(f"interrupted by {name}{'' if where else ' '}{message}", signum)

    def _before_step(self) -> None:
        if self.dist.any(self.stop.requested):
            if not self.stop.requested:  # another rank got the signal: stop as it does
                self.stop.signum = signal.SIGTERM
            self._stop_safely()

    def _evaluate(self) -> dict[str, float | None]:
        trainer, autocast = self.config.trainer, self.runtime.autocast
        result = validate(self.model, self.data, trainer, self.device, autocast, self.dist)
        self.threshold, self._group_notes = result.threshold, result.group_notes
        for note in result.notes:
            if note not in self._notes:  # once per run
                self._notes.add(note)
                self.log.write("note", epoch=self.progress.epoch + 1, message=note)
                self._info(f"note: {note}")
        return result.metrics

    def _result(
        self, stopped_early: bool = False, early_stopping: str | None = None
    ) -> TrainingResult:
        return TrainingResult.of(
            self.trial_dir, self.metric_name, self.progress.history, stopped_early, early_stopping
        )

    # --------------------------------------------------------------- cleanup
    def finish_tracking(self) -> None:
        paths = TrialPaths(self.trial_dir)
        artifacts = [paths.config, paths.split_manifest, self.log.path]
        self.tracking.finish("FINISHED", artifacts, self.checkpoints.best())

    def discard_setup(self, status: str) -> None:
        """After `setup` failed (`status`: FAILED, or KILLED for a signal): the MLflow run, if
        one was opened, ends with that status; a run directory this run created and that
        holds no checkpoint is taken back (nothing half-made stays behind); the lock goes."""
        if hasattr(self, "tracking"):
            self.tracking.abandon(status)
        if not hasattr(self, "trial_dir") or not self.dist.is_main:
            return
        with contextlib.suppress(Exception):
            self.checkpoints.close()
        release = functools.partial(trial_lock.release, self.trial_dir)
        if not self.created_run_dir:
            release()
        elif discard_unstarted_run(self.trial_dir, release):
            self.console.print(
                f"removed {self.trial_dir}: the run did not start", highlight=False, markup=False
            )

    def ended(self, status: str, error: BaseException) -> None:
        """How the run ended, for `run_end` in train.jsonl (FINISHED when never called)."""
        self._end = {"status": status, "reason": first_line(error)[:300]}

    def cleanup(self) -> None:
        try:  # a write still pending after a failure: let it finish, note its error
            self.checkpoints.close()
        except Exception as exc:
            self.log.write(
                "checkpoint", epoch=self.progress.epoch, action="write_failed", error=str(exc)
            )
        self.log.write(
            "run_end",
            epoch=self.progress.epoch,
            step=self.progress.global_step,
            status=self._end["status"],
            reason=self._end.get("reason"),
        )
        if self.dist.is_main:
            trial_lock.release(self.trial_dir)
