"""A run's directory: `trial_{id}/` with `config.yaml`, `logs/train.jsonl` and the lock
that keeps `cleanup` away while it runs; only rank 0 of a torchrun job writes it."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import yaml

from dataaug_multi_both.checkpointing import lock as trial_lock
from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.discard import discard_unstarted_run
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.policy import RESUME
from dataaug_multi_both.config.public import public_config
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.layout import TrialPaths
from dataaug_multi_both.stamps import new_run_id
from dataaug_multi_both.training.run_log import NullRunLog, RunLog
from dataaug_multi_both.training.run_options import RunOptions
from dataaug_multi_both.training.run_state import (
    EPOCH_EVENTS,
    ResumePoint,
    TrainingProgress,
    trial_dir_of,
)


class RunDirectory(NamedTuple):
    trial_dir: Path
    checkpoint_dir: Path
    log: RunLog
    created: bool  # by this run (a run that fails to start takes it back)


def open_run_directory(
    config: TrainConfig,
    options: RunOptions,
    progress: TrainingProgress,
    resume: ResumePoint | None,
    info: Callable[[str], None],
) -> RunDirectory:
    """The run's directory, created (rank 0) with the resolved config and the lock; a resume
    continues the checkpoint's trial directory and log (`progress` takes the checkpoint's
    trial, epoch, step and MLflow run), a new run gets an id (rank 0's under torchrun)."""
    dist = options.dist
    if resume is not None:
        progress.load_state_dict(resume.payload)
        trial_dir = trial_dir_of(resume.path, Path(config.output.experiments_dir))
        default_checkpoints = resume.path.resolve().parent
    else:
        progress.trial_id = dist.broadcast(
            options.elastic_trial_id or config.output.trial_id or new_run_id()
        )
        experiments_dir = Path(config.output.experiments_dir).resolve()
        trial_dir = TrialPaths.of(experiments_dir, progress.trial_id).root
        default_checkpoints = TrialPaths(trial_dir).checkpoints
    checkpoint_dir = (options.checkpoint_dir or default_checkpoints).resolve()
    if resume is None and options.elastic_trial_id is None:
        refuse_finished_trial(trial_dir, checkpoint_dir)
    log_path = TrialPaths(trial_dir).log
    if not dist.is_main:  # only rank 0 writes the run directory
        return RunDirectory(trial_dir, checkpoint_dir, NullRunLog(log_path), False)
    created, held_before = not trial_dir.exists(), trial_lock.held_here(trial_dir)
    try:
        trial_dir.mkdir(parents=True, exist_ok=True)
        trial_lock.acquire(trial_dir)  # cleanup leaves a running trial alone
        log = RunLog(log_path)
        if resume is None:
            forget_unfinished_attempt(log)
        resolved = yaml.safe_dump(public_config(config.to_dict()), sort_keys=False)
        atomic_write_text(TrialPaths(trial_dir).config, resolved)
        info(f"run directory: {trial_dir}")
        if dist.enabled:
            trainer = config.trainer
            effective = trainer.batch_size * dist.world_size * trainer.gradient_accumulation_steps
            info(f"data parallel: {dist.world_size} processes, effective batch {effective}")
    except BaseException:  # in use, a full disk, Ctrl-C: what this run made goes
        if trial_lock.held_here(trial_dir) and not held_before:  # this call locked it
            _take_back(trial_dir, created)
        elif created:
            with contextlib.suppress(OSError):  # empty unless another run got there first
                trial_dir.rmdir()
        raise
    return RunDirectory(trial_dir, checkpoint_dir, log, created)


def _take_back(trial_dir: Path, created: bool) -> None:
    """A run that failed after locking its directory: the lock goes, and the files it made
    with the directory when this run created it."""
    release = functools.partial(trial_lock.release, trial_dir)
    if created:
        discard_unstarted_run(trial_dir, release)
    else:
        release()


def forget_unfinished_attempt(log: RunLog) -> None:
    """A fresh start in a trial directory whose earlier attempt was killed before any
    resume checkpoint: its epoch lines describe training that starts over now."""
    records = log.records()
    stale = sorted({r["epoch"] for r in records if r.get("event") == "epoch_end"})
    if stale:
        log.rewrite([r for r in records if r.get("event") not in EPOCH_EVENTS])
        log.write("restart", epoch=0, dropped_epochs=stale)


def refuse_finished_trial(trial_dir: Path, checkpoint_dir: Path) -> None:
    """A fresh start may not train into a trial that already holds checkpoints: its records
    and retention would mix two runs (and the new run's could not be resumed)."""
    manifest = CheckpointManifest.read(checkpoint_dir)
    kept = manifest.retained() if manifest else []
    if kept:
        epochs = sorted(r.epoch for r in kept)
        latest = manifest.latest(RESUME) if manifest else None
        how = f"continue it with --resume-from {checkpoint_dir / latest.file}; " if latest else ""
        raise ConfigError(
            f"{trial_dir.name} already holds checkpoints of epochs {epochs[0]}..{epochs[-1]}: "
            f"{how}or train under another output.trial_id"
        )
