"""Resume state: what goes into a checkpoint, choosing the checkpoint to resume from
(SHA256 against the manifest, fallback), the config check, and the run log's continuity."""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest, CheckpointRecord
from dataaug_multi_both.checkpointing.policy import RESUME
from dataaug_multi_both.checkpointing.store import load_checkpoint, verifies
from dataaug_multi_both.config.compose import config_fingerprint
from dataaug_multi_both.config.public import public_config
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError, StorageError
from dataaug_multi_both.layout import CHECKPOINTS_DIR, MID_EPOCH_FILE, TRIAL_PREFIX, TrialPaths
from dataaug_multi_both.training.seeding import capture_rng_state

# Settings that may change between a run and its resume: they do not change what is trained.
NOT_TRAINING_RELEVANT = (
    "trainer.max_epochs",
    "trainer.logging_steps",
    "trainer.save_steps",
    "output.",
    "tracking.",
    "retention.",
)
STEP_EVENTS = ("step", "evaluation")  # step-level records, after an epoch's start
EPOCH_EVENTS = ("epoch_end", "checkpoint")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def training_relevant(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in flatten(config).items()
        if not any(k == p or k.startswith(p) for p in NOT_TRAINING_RELEVANT)
    }


def training_config_hash(config: Mapping[str, Any]) -> str:
    return config_fingerprint(training_relevant(config))


def require_same_training_config(current: Mapping[str, Any], saved: Mapping[str, Any]) -> None:
    """ConfigError (exit 2) naming every training-relevant key whose value differs."""
    a, b = training_relevant(current), training_relevant(saved)
    # a setting added since the checkpoint was written has its default there
    default = training_relevant(TrainConfig().to_dict())
    differing = sorted(
        k for k in a.keys() | b.keys() if a.get(k, default.get(k)) != b.get(k, default.get(k))
    )
    if differing:
        details = ", ".join(
            f"{k} (checkpoint {b.get(k)!r}, now {a.get(k)!r})" for k in differing[:8]
        )
        raise ConfigError(
            f"the configuration differs from the checkpoint's in training-relevant settings: {details}; "
            "only trainer.max_epochs, output.*, tracking.* and retention.* may change on resume"
        )


def trial_dir_of(checkpoint: Path, experiments_dir: Path) -> Path:
    """The trial directory a checkpoint belongs to: `<trial>/checkpoints/epoch_N.pt` in the
    default layout (so a moved or copied trial resumes in place), else the directory its
    manifest recorded (checkpoints kept elsewhere with --checkpoint-dir) if that lies inside
    `experiments_dir` (a manifest is not trusted to say where a run writes), else the
    checkpoint directory's parent."""
    directory = checkpoint.resolve().parent
    if directory.name == CHECKPOINTS_DIR and TrialPaths(directory.parent).config.is_file():
        return directory.parent
    try:
        manifest = CheckpointManifest.read(directory)
    except StorageError:
        manifest = None
    if manifest and manifest.trial_dir:
        recorded = Path(manifest.trial_dir).resolve()
        own = TrialPaths(recorded)
        if (
            recorded.is_relative_to(experiments_dir.resolve())
            and recorded.name.startswith(TRIAL_PREFIX)
            # not another trial that keeps its own checkpoints (a downloaded manifest naming
            # one of yours would continue, lock and rewrite it)
            and (not own.manifest.is_file() or own.checkpoints.resolve() == directory)
        ):
            return recorded
    return directory.parent


def resume_target(given: Path) -> Path:
    """The checkpoint `--resume-from` means: a file as given; a trial directory or its
    checkpoints/ means its latest resume checkpoint (Lightning's `ckpt_path="last"`; the
    resume then verifies it and falls back to an earlier one if it must)."""
    if given.is_file():
        return given
    if not given.is_dir():
        raise ConfigError(f"--resume-from: no such checkpoint, trial or directory: {given}")
    for directory in (given, TrialPaths(given).checkpoints):
        manifest = CheckpointManifest.read(directory) if directory.is_dir() else None
        latest = manifest.latest_resume_file() if manifest else None
        if latest is not None:  # a mid-epoch checkpoint ahead of the last epoch's, or that
            return directory / latest[0]
    raise ConfigError(f"--resume-from: {given} holds no resume checkpoint (no epoch was saved)")


def experiments_root(overrides: list[str]) -> Path:
    """The experiments directory an override names (output.experiments_dir=...), else
    `experiments/`: where a trial named by a checkpoint's manifest may lie."""
    named = [o.split("=", 1)[1] for o in overrides if o.startswith("output.experiments_dir=")]
    return Path(named[-1] if named else "experiments").resolve()


def resume_config_path(checkpoint: Path, experiments_dir: Path) -> Path | None:
    """The resolved config of the trial a checkpoint belongs to (the base of a resume when
    no --config is given)."""
    candidate = TrialPaths(trial_dir_of(checkpoint, experiments_dir)).config
    return candidate if candidate.is_file() else None


@dataclass
class TrainingProgress:
    """Where a run stands: what a resume restores besides weights, optimizer and RNG state
    (the history comes back from train.jsonl, reconciled with the manifest)."""

    trial_id: str = ""
    epoch: int = 0  # epochs finished
    global_step: int = 0  # optimizer steps taken
    mlflow_run_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics of each epoch

    def state_dict(self) -> dict[str, Any]:
        return {
            ckpt.TRIAL_ID: self.trial_id,
            ckpt.EPOCH: self.epoch,
            ckpt.GLOBAL_STEP: self.global_step,
            ckpt.MLFLOW_RUN_ID: self.mlflow_run_id,
        }

    def load_state_dict(self, payload: Mapping[str, Any]) -> None:
        self.trial_id = str(payload[ckpt.TRIAL_ID])
        self.epoch = int(payload[ckpt.EPOCH])
        self.global_step = int(payload[ckpt.GLOBAL_STEP])
        self.mlflow_run_id = payload.get(ckpt.MLFLOW_RUN_ID)


@dataclass
class ResumePoint:
    path: Path
    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    # a weights-only checkpoint the user named: its weights, epoch and step continue, the
    # optimizer, schedule position and RNG start fresh (not an exact resume)
    weights_only: bool = False


def select_resume_checkpoint(path: Path) -> ResumePoint:
    """The checkpoint to resume from: `path` if it verifies against its manifest and is a
    resume checkpoint, else the most recent earlier one that does (with a warning), else
    StorageError (exit 4) that names a weights-only checkpoint that verifies, if any, and the
    command that continues from it. Named explicitly, a weights-only checkpoint that verifies
    is continued from (its weights; see `ResumePoint.weights_only`): never chosen silently."""
    directory = path.resolve().parent
    manifest = CheckpointManifest.read(directory)
    if manifest is None:
        raise StorageError(
            f"no manifest.json next to {path}: cannot verify the checkpoint's SHA256"
        )
    if path.name == MID_EPOCH_FILE:
        return _mid_epoch_resume(path, directory, manifest)
    record = manifest.by_file(path.name)
    problem = _problem(directory, record, path.name)
    if problem is None:
        assert record is not None
        return ResumePoint(path, load_checkpoint(directory / record.file))
    if record is not None and problem == WEIGHTS_ONLY_PROBLEM:
        return ResumePoint(
            path,
            load_checkpoint(directory / record.file),
            [
                f"continuing from the weights of {path.name} (epoch {record.epoch}, step "
                f"{record.step}, weights-only): a fresh AdamW state and RNG, the "
                f"learning-rate schedule continues at step {record.step}; this is not "
                "an exact resume"
            ],
            weights_only=True,
        )
    warnings = [f"{path}: {problem}"]
    before = record.epoch if record else None
    candidates = [
        r
        for r in sorted(manifest.retained(), key=lambda r: -r.epoch)
        if r.kind == RESUME and (before is None or r.epoch < before) and r.file != path.name
    ]
    for candidate in candidates:
        issue = _problem(directory, candidate, candidate.file)
        if issue is None:
            warnings.append(f"falling back to {candidate.file} (epoch {candidate.epoch})")
            return ResumePoint(
                directory / candidate.file, load_checkpoint(directory / candidate.file), warnings
            )
        warnings.append(f"{candidate.file}: {issue}")
    raise StorageError(
        f"cannot resume from {path}: {problem}, and no earlier resume checkpoint in {directory} "
        f"verifies{_weights_only_way_out(directory, manifest)}"
    )


def _mid_epoch_resume(path: Path, directory: Path, manifest: CheckpointManifest) -> ResumePoint:
    """The mid-epoch checkpoint if it verifies, else the latest epoch resume checkpoint
    (with a warning), through the same checks as any other."""
    mid = manifest.mid_epoch
    problem: str | None
    if mid is None:
        problem = "not recorded in manifest.json (an older mid-epoch file)"
    elif not verifies(path, mid.sha256):
        problem = "SHA256 does not match the manifest (corrupted, or its write was cut short)"
    else:
        try:
            payload = load_checkpoint(path)
        except StorageError as exc:
            payload, problem = {}, exc.message
        else:
            problem = (
                epoch_position_problem(payload, mid.batches_done)
                if ckpt.is_resume(payload)
                else "not a resume checkpoint"
            )
        if problem is None:
            return ResumePoint(path, payload)
    latest = manifest.latest(RESUME)
    if latest is None:
        raise StorageError(f"cannot resume from {path}: {problem}, and no epoch checkpoint exists")
    point = select_resume_checkpoint(directory / latest.file)
    point.warnings.insert(0, f"{path}: {problem}; falling back to {latest.file}")
    return point


def _weights_only_way_out(directory: Path, manifest: CheckpointManifest) -> str:
    """The newest weights-only checkpoint that verifies, as the command that continues from
    it (the user decides: its optimizer state is gone), or ""."""
    for record in sorted(manifest.retained(), key=lambda r: -r.epoch):
        if record.kind != RESUME and _problem(directory, record, record.file) == (
            WEIGHTS_ONLY_PROBLEM
        ):
            return (
                f"; {record.file} (epoch {record.epoch}, weights-only) does. To continue from "
                "its weights with a fresh optimizer state (not an exact resume), run the same "
                f"command with --resume-from {shlex.quote(str(directory / record.file))}"
            )
    return ""


WEIGHTS_ONLY_PROBLEM = "weights-only checkpoint (no optimizer state)"


def _problem(directory: Path, record: CheckpointRecord | None, name: str) -> str | None:
    """Why this checkpoint cannot be resumed from, or None."""
    if record is None:
        return "not recorded in manifest.json"
    if not record.retained:
        return "deleted by the retention policy (not retained)"
    path = directory / name
    if not path.is_file():
        return "file is missing"
    if not verifies(path, record.sha256):
        return "SHA256 does not match the manifest (corrupted)"
    if record.kind != RESUME:
        return WEIGHTS_ONLY_PROBLEM
    try:
        payload = load_checkpoint(path)
    except StorageError as exc:
        return exc.message
    if not ckpt.is_resume(payload):
        return "not a resume checkpoint"
    return None


def reconcile_run_log(
    records: list[dict[str, Any]], resumed_epoch: int, manifest: CheckpointManifest
) -> tuple[list[dict[str, Any]], list[int]]:
    """The run log as it continues after resuming from `resumed_epoch`.

    Epoch records after `resumed_epoch` are not confirmed by a checkpoint: they are dropped
    (the epochs are replayed, and the returned list names them). Epochs up to it whose
    `epoch_end` line was lost (a crash between the save and the log write) are restored from
    the manifest's metrics.
    """
    kept = [
        r
        for r in records
        if not (r.get("event") in EPOCH_EVENTS and (r.get("epoch") or 0) > resumed_epoch)
    ]
    replayed = sorted(
        {
            r["epoch"]
            for r in records
            if r.get("event") == "epoch_end" and r["epoch"] > resumed_epoch
        }
    )
    logged = {r["epoch"] for r in kept if r.get("event") == "epoch_end"}
    for record in manifest.records:
        if record.epoch <= resumed_epoch and record.epoch not in logged:
            kept.append(
                {
                    "timestamp": None,
                    "event": "epoch_end",
                    "epoch": record.epoch,
                    "step": record.step,
                    "metrics": record.metrics,
                    "restored_from": record.file,
                }
            )
            logged.add(record.epoch)
    return kept, replayed


def resume_history(
    log: Any, progress: TrainingProgress, manifest: CheckpointManifest | None
) -> list[int]:
    """After a resume to `progress.epoch` (and step): the run log made consistent with the
    checkpoints (`reconcile_run_log`; step-level records past the resumed step dropped, they
    are made again; rewritten in place) and `progress.history` rebuilt from it; returns the
    epochs that will be replayed."""
    records = [
        r
        for r in log.records()
        if not (r.get("event") in STEP_EVENTS and _step_of(r) > progress.global_step)
    ]
    replayed: list[int] = []
    if manifest is not None:
        records, replayed = reconcile_run_log(records, progress.epoch, manifest)
        log.rewrite(records)
    progress.history = [
        r["metrics"]
        for r in sorted(records, key=lambda r: r["epoch"] or 0)
        if r["event"] == "epoch_end"
    ]
    return replayed


def _step_of(record: dict[str, Any]) -> int:
    step = record.get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else 0


def restored_evaluations(
    payload: Mapping[str, Any], from_history: list[float | None]
) -> list[float | None]:
    """The objective of every validation before the checkpoint (early stopping's memory);
    a checkpoint written before they were kept, or holding anything but finite numbers,
    has them from the epoch history."""
    saved = payload.get(ckpt.EVALUATIONS)
    if not isinstance(saved, list):
        return list(from_history)
    values: list[float | None] = []
    for value in saved:
        number = _finite(value)
        if value is not None and number is None:
            return list(from_history)
        values.append(number)
    return values


def _finite(value: Any) -> float | None:
    """`value` as a finite float, or None (anything else: a bool, a huge int, NaN, ...)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


POSITION_SUMS = {"sums": ("cm", "eb", "correct", "rows"), "window": ("cm", "eb", "rows")}


def epoch_position_problem(payload: Mapping[str, Any], batches_done: int) -> str | None:
    """Why a mid-epoch checkpoint's `epoch_position` cannot be continued from (it must be
    what the store writes: the batches done, as the manifest records them, and finite
    non-negative sums), or None."""
    position = payload.get(ckpt.EPOCH_POSITION)
    if not isinstance(position, dict):
        return "its epoch position is missing or not a mapping"
    done = position.get("batches_done")
    if isinstance(done, bool) or not isinstance(done, int) or done != batches_done:
        return "its epoch position does not match the manifest's batches_done"
    for part, keys in POSITION_SUMS.items():
        sums = position.get(part)
        if not isinstance(sums, dict):
            return f"its epoch position lacks {part}"
        for key in keys:
            number = _finite(sums.get(key))
            if number is None or number < 0:
                return f"its epoch position has an unusable {part}.{key}"
    return None


def restored_position(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The epoch position of a mid-epoch checkpoint (checked by `epoch_position_problem`
    when it was chosen), or None for an epoch's checkpoint."""
    position = payload.get(ckpt.EPOCH_POSITION)
    return dict(position) if isinstance(position, dict) else None


def resume_payload(
    optimisation: Any,
    config: TrainConfig,
    model: Any,
    metrics: Mapping[str, Any],
    trial_dir: Path,
    decision_threshold: dict[str, Any],
    copy: bool,
) -> dict[str, Any]:
    """A resume checkpoint's content (checkpointing/format.py names the keys): everything an
    exact resume restores. `optimisation` (training.loop.Optimisation) holds the optimizer,
    scheduler, scaler and progress; `copy` snapshots every tensor to the CPU (needed when the
    payload must outlive further training steps)."""

    def cpu(value: Any) -> Any:
        return ckpt.to_cpu(value) if copy else value

    return {
        ckpt.FORMAT_VERSION: ckpt.CURRENT_FORMAT,
        ckpt.KIND: RESUME,
        **optimisation.progress.state_dict(),
        ckpt.MODEL: cpu(model.state_dict()),
        ckpt.MODEL_ARGS: {
            "model_id": config.model.model_id,
            "revision": config.model.revision,
            "encoder_config": json.dumps(model.encoder.config.to_dict(), default=str),
        },
        ckpt.OPTIMIZER: cpu(optimisation.optimizer.state_dict()),
        ckpt.SCHEDULER: optimisation.scheduler.state_dict(),
        ckpt.SCALER: optimisation.scaler.state_dict(),
        ckpt.RNG: capture_rng_state(),
        ckpt.CONFIG: public_config(config.to_dict()),  # shared with the model: no passwords
        ckpt.CONFIG_HASH: training_config_hash(config.to_dict()),
        ckpt.METRICS: dict(metrics),
        ckpt.TRIAL_DIR: str(trial_dir),
        ckpt.WEIGHTS_DTYPE: "float32",
        ckpt.DECISION_THRESHOLD: decision_threshold,
    }
