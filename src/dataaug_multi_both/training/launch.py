"""Starting a training run: one process, or this process's part of a torchrun job, with the
automatic resume after an elastic restart; the recipe's lifecycle in one place."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.policy import RESUME
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError, Interrupted, TrackingError
from dataaug_multi_both.layout import SAFE_ID, TrialPaths
from dataaug_multi_both.stamps import new_run_id
from dataaug_multi_both.training.distributed import (
    elastic_restart_count,
    elastic_run_id,
    process_group,
    torch_device,
)
from dataaug_multi_both.training.interrupt import Terminated, interrupt_signal, sigterm_received
from dataaug_multi_both.training.memory import is_out_of_memory, out_of_memory
from dataaug_multi_both.training.recipe import TrainingRecipe
from dataaug_multi_both.training.run_options import RunOptions, TrainingResult
from dataaug_multi_both.untrusted import read_json


def run_training(config: TrainConfig, options: RunOptions) -> TrainingResult:
    """One training run; under torchrun, this process's part of the data-parallel job."""
    device = torch_device(config.trainer.device)
    with process_group(options.dist, device, config.trainer.ddp_timeout_sec):
        options = _elastic_resume(config, options)
        try:
            return _run(config, options)
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            error = out_of_memory(exc, config, str(options.dist.device(device)))
        # raised outside the handler: the failed step's frames (and tensors) are freed
        raise error


def _elastic_resume(config: TrainConfig, options: RunOptions) -> RunOptions:
    """After torchrun restarted a failed job (`--max-restarts`), continue from the latest
    resume checkpoint of the trial the first attempt started."""
    run_id = elastic_run_id()
    if (
        not options.dist.enabled
        or not options.elastic
        or run_id is None
        or options.resume_from is not None
    ):
        return options
    marker = Path(config.output.experiments_dir).resolve() / f".torchrun-{run_id}.json"
    if elastic_restart_count() == 0:
        trial_id = options.dist.broadcast(config.output.trial_id or new_run_id())
        if options.dist.is_main:
            marker.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(marker, json.dumps({"trial_id": trial_id}))
        options.dist.barrier()
        return dataclasses.replace(options, elastic_trial_id=trial_id)
    recorded = read_json(marker, ConfigError) if marker.is_file() else None
    trial_id = recorded.get("trial_id") if isinstance(recorded, dict) else None
    if not isinstance(trial_id, str) or not SAFE_ID.fullmatch(trial_id):
        return options
    checkpoints = TrialPaths.of(marker.parent, trial_id).checkpoints
    latest = latest_resume_in(checkpoints) if checkpoints.is_dir() else None
    if latest is None:
        return dataclasses.replace(options, elastic_trial_id=trial_id)
    options.console.print(f"torchrun restart: resuming from {latest}", highlight=False)
    return dataclasses.replace(options, resume_from=latest)


def latest_resume_in(checkpoint_dir: Path) -> Path | None:
    manifest = CheckpointManifest.read(checkpoint_dir)
    latest = manifest.latest(RESUME) if manifest is not None else None
    return checkpoint_dir / latest.file if latest else None


def _run(config: TrainConfig, options: RunOptions) -> TrainingResult:
    recipe = TrainingRecipe(config, options)
    try:
        recipe.setup()
        if sigterm_received():  # one that Python dropped (raised in a __del__) during set-up
            raise Terminated()
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (`Terminated`)
        recipe.discard_setup("KILLED")
        signum = interrupt_signal(exc)
        name = signal.Signals(signum).name
        message = f"interrupted by {name} before training started: nothing to resume"
        raise Interrupted(message, signum) from exc
    except BaseException as exc:
        recipe.discard_setup("KILLED" if isinstance(exc, Interrupted) else "FAILED")
        raise
    try:
        result = recipe.train()
        recipe.finish_tracking()
        return result
    except Interrupted as exc:
        recipe.ended("KILLED", exc)
        recipe.tracking.abandon("KILLED")
        raise
    except TrackingError as exc:
        recipe.ended("FAILED", exc)
        raise
    except BaseException as exc:
        recipe.ended("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", exc)
        recipe.tracking.abandon("FAILED")
        raise
    finally:
        recipe.cleanup()
