"""Study-wide retention on disk: what a finished trial keeps once the study has ranked it.

- `release`: every checkpoint of the trial goes (pruned, failed, or outside the top K);
- `keep_best`: only its best checkpoint stays, slimmed to weights-only.
Manifest records stay (`retained: false`), so every checkpoint ever saved is still listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from dataaug_multi_both.checkpointing import lock as trial_lock
from dataaug_multi_both.checkpointing.checkpointer import disk_usage
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.policy import RESUME, fits_on_disk
from dataaug_multi_both.checkpointing.store import CheckpointStore
from dataaug_multi_both.layout import TrialPaths

KEEP_BEST = "keep_best"
RELEASE = "release"


def trial_checkpoint_dir(trial_dir: Path) -> Path:
    return TrialPaths(trial_dir).checkpoints


def apply_trial_decision(
    trial_dir: Path, decision: str, best_dtype: torch.dtype | None = None
) -> int:
    """Act on one finished trial's checkpoints; returns bytes freed (0 if nothing to do, or
    if a live process holds the trial: a worker whose trial was failed for a stale heartbeat
    may still be writing it)."""
    if symlinked(trial_dir):  # a trial is a real directory of the tree, never a link out
        return 0
    with trial_lock.held_unless_running(trial_dir) as ours:
        return _apply(trial_dir, decision, best_dtype) if ours else 0


def symlinked(trial_dir: Path) -> bool:
    """The trial directory or its checkpoints/ is a symlink (retention and cleanup leave it)."""
    return trial_dir.is_symlink() or trial_checkpoint_dir(trial_dir).is_symlink()


def _apply(trial_dir: Path, decision: str, best_dtype: torch.dtype | None) -> int:
    directory = trial_checkpoint_dir(trial_dir)
    manifest = CheckpointManifest.read(directory)
    if manifest is None or not manifest.retained():
        return 0
    store = CheckpointStore(directory, manifest.trial_id, manifest.optimization_metric, trial_dir)
    freed = 0
    for record in list(store.manifest.retained()):
        if decision == KEEP_BEST and record.is_best:
            if record.kind == RESUME:
                freed += store.slim(record, best_dtype)
        else:
            freed += store.delete(record)
    return freed


def study_disk_problem(
    experiments_dir: Path, largest_resume: int, threshold_percent: float
) -> str | None:
    """Why another trial does not fit on the disk (its checkpoints would leave less than
    `threshold_percent` free: two resume checkpoints of `largest_resume` bytes, the largest
    a trial has written yet), or None."""
    usage = disk_usage(experiments_dir)
    needed = 2 * largest_resume
    if fits_on_disk(usage.free, usage.total, needed, threshold_percent):
        return None
    return (
        f"not enough disk space for another trial in {experiments_dir}: "
        f"{usage.free / 1e9:.3f} GB free of {usage.total / 1e9:.3f} GB, the threshold is "
        f"{threshold_percent}% and a trial needs about {needed / 1e6:.1f} MB"
    )
