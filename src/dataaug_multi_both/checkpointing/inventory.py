"""What a trial's checkpoint directory holds, as plain rows for listings (read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.errors import DataAugError
from dataaug_multi_both.layout import MANIFEST_FILE, TrialPaths
from dataaug_multi_both.metric_names import is_per_criterion


@dataclass
class CheckpointListing:
    trial_id: str
    metric: str
    directory: Path
    rows: list[dict[str, Any]]
    metric_names: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def checkpoint_directory(trial_dir: Path) -> Path:
    """`trial_dir/checkpoints`, or `trial_dir` itself when it holds the manifest."""
    if not trial_dir.is_dir():
        raise DataAugError(f"trial directory not found: {trial_dir}")
    for candidate in (TrialPaths(trial_dir).checkpoints, trial_dir):
        if (candidate / MANIFEST_FILE).is_file():
            return candidate
    raise DataAugError(
        f"no checkpoint manifest in {trial_dir} (a --dry-run trains without checkpoints)"
    )


def checkpoint_rows(trial_dir: Path, with_metrics: bool = False) -> CheckpointListing:
    directory = checkpoint_directory(trial_dir)
    manifest = CheckpointManifest.read(directory)
    assert manifest is not None
    listing = CheckpointListing(manifest.trial_id, manifest.optimization_metric, directory, [])
    names: dict[str, None] = {}
    for record in sorted(manifest.records, key=lambda r: (r.epoch, r.created)):
        path = directory / record.file
        on_disk = path.is_file() and record.retained
        if record.retained and not path.is_file():
            listing.warnings.append(f"{record.file} is recorded as retained but missing on disk")
        row: dict[str, Any] = {
            "checkpoint": record.file,
            "path": str(path),
            "epoch": record.epoch,
            "step": record.step,
            "metric": manifest.optimization_metric,
            "metric_value": record.metric_value,
            "is_best": record.is_best,
            "is_latest": record.is_latest,
            "retained": record.retained,
            "kind": record.kind,
            "size_mb": round(path.stat().st_size / 1e6, 3) if on_disk else None,
            "sha256": record.sha256,
        }
        if with_metrics:
            row["metrics"] = {
                k: v for k, v in record.metrics.items() if k != manifest.optimization_metric
            }
            names.update(dict.fromkeys(row["metrics"]))
        listing.rows.append(row)
    if manifest.mid_epoch is not None:  # trainer.save_steps: the run's progress inside an epoch
        row = _mid_epoch_row(directory, manifest, with_metrics, listing.warnings)
        if row["is_latest"]:  # a resume of the trial continues from it
            for other in listing.rows:
                other["is_latest"] = False
        listing.rows.append(row)
    listing.metric_names = [n for n in names if not is_per_criterion(n)]
    return listing


def _mid_epoch_row(
    directory: Path, manifest: CheckpointManifest, with_metrics: bool, warnings: list[str]
) -> dict[str, Any]:
    mid = manifest.mid_epoch
    assert mid is not None
    path = directory / mid.file
    if not path.is_file():
        warnings.append(f"{mid.file} is recorded but missing on disk")
    latest = manifest.latest_resume_file()
    row: dict[str, Any] = {
        "checkpoint": mid.file,
        "path": str(path),
        "epoch": mid.epoch,
        "step": mid.step,
        "metric": manifest.optimization_metric,
        "metric_value": None,  # not validated: a position inside epoch `epoch`
        "is_best": False,
        "is_latest": latest is not None and latest[0] == mid.file,
        "retained": path.is_file(),
        "kind": f"mid-epoch (batch {mid.batches_done})",
        "size_mb": round(path.stat().st_size / 1e6, 3) if path.is_file() else None,
        "sha256": mid.sha256,
    }
    if with_metrics:
        row["metrics"] = {}
    return row
