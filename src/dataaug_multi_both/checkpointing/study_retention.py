"""Study-wide retention on disk: what a finished trial keeps once the study has ranked it.

- `release`: every checkpoint of the trial goes (pruned, failed, or outside the top K);
- `keep_best`: only its best checkpoint stays, slimmed to weights-only.
Manifest records stay (`retained: false`), so every checkpoint ever saved is still listed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.policy import RESUME
from dataaug_multi_both.checkpointing.store import CheckpointStore

KEEP_BEST = "keep_best"
RELEASE = "release"


def trial_checkpoint_dir(trial_dir: Path) -> Path:
    return trial_dir / "checkpoints"


def retained_bytes(trial_dir: Path) -> int:
    manifest = CheckpointManifest.read(trial_checkpoint_dir(trial_dir))
    return manifest.total_bytes() if manifest else 0


def apply_trial_decision(
    trial_dir: Path, decision: str, best_dtype: torch.dtype | None = None
) -> int:
    """Act on one finished trial's checkpoints; returns bytes freed (0 if nothing to do)."""
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
