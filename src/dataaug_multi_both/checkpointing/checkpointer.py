"""Per-epoch checkpointing of one trial: when to save, free-space checks, and applying the
retention policy right after each save. Every decision is reported through `report`
(saved / slimmed / deleted, with bytes) so that the run log records it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from dataaug_multi_both.checkpointing.manifest import CheckpointRecord, MidEpochRecord
from dataaug_multi_both.checkpointing.policy import (
    RESUME,
    decide,
    fits_on_disk,
    over_budget,
    should_save,
)
from dataaug_multi_both.checkpointing.store import CheckpointStore
from dataaug_multi_both.config.schema import RetentionConfig
from dataaug_multi_both.errors import StorageError

Report = Callable[..., None]  # report(action, **fields)
_DTYPE_NAMES = {"float32": None, "bf16": "bfloat16", "fp16": "float16"}


def best_dtype(name: str) -> torch.dtype | None:
    """`retention.best_dtype` as a torch dtype (None: keep float32). torch is imported
    here, not with the module: listings and cleanup never need it."""
    import torch

    attribute = _DTYPE_NAMES[name]
    return None if attribute is None else getattr(torch, attribute)


@dataclass(frozen=True)
class DiskUsage:
    free: int
    total: int


def disk_usage(path: Path) -> DiskUsage:
    probe = path
    while not probe.exists():
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return DiskUsage(usage.free, usage.total)


class Checkpointer:
    def __init__(self, store: CheckpointStore, retention: RetentionConfig, report: Report) -> None:
        self.store = store
        self.retention = retention
        self.report = report

    @property
    def last_saved_epoch(self) -> int | None:
        saved = [r.epoch for r in self.store.manifest.records]
        return max(saved) if saved else None

    def wants(self, epoch: int, is_new_best: bool, is_final: bool) -> bool:
        return should_save(
            epoch, self.last_saved_epoch, is_new_best, is_final, self.retention.min_interval_epochs
        )

    def write_serialized(
        self,
        data: bytes,
        kind: str,
        epoch: int,
        step: int,
        metric_value: float | None,
        metrics: dict[str, Any],
        decision_threshold: dict[str, Any] | None = None,
    ) -> CheckpointRecord:
        """Put an epoch serialized in memory on disk, then apply retention (what the
        background writer runs)."""
        self._ensure_space(len(data), epoch)
        mid = self.store.manifest.mid_epoch
        record = self.store.save_serialized(
            data, kind, epoch, step, metric_value, metrics, decision_threshold
        )
        if mid is not None and self.store.manifest.mid_epoch is None:
            self._report_mid_epoch_gone(mid, "an epoch checkpoint is ahead of it")
        self._saved(record)
        return record

    def drop_mid_epoch(self, reason: str) -> None:
        mid = self.store.manifest.mid_epoch
        if mid is not None:
            self.store.drop_mid_epoch()
            self._report_mid_epoch_gone(mid, reason)

    def _report_mid_epoch_gone(self, mid: MidEpochRecord, reason: str) -> None:
        self.report(
            "deleted",
            file=mid.file,
            epoch=mid.epoch,
            step=mid.step,
            bytes=mid.size_bytes,
            reason=reason,
        )

    def write_mid_epoch(self, data: bytes, epoch: int, step: int, batches_done: int) -> None:
        """Put a mid-epoch resume checkpoint on disk (the same free-space rule as an epoch's;
        it replaces the previous one, so a trial holds at most one)."""
        self._ensure_space(len(data), epoch)
        record = self.store.save_mid_epoch(data, epoch, step, batches_done)
        self.report(
            "saved",
            file=record.file,
            epoch=epoch,
            step=step,
            batches_done=batches_done,
            bytes=record.size_bytes,
            kind="mid-epoch",
        )

    def _saved(self, record: CheckpointRecord) -> None:
        self.report(
            "saved",
            file=record.file,
            epoch=record.epoch,
            bytes=record.size_bytes,
            kind=record.kind,
        )
        self.apply_policy()

    def apply_policy(self) -> int:
        """Keep-last-N / keep-best-K, then the size cap; returns bytes freed."""
        manifest = self.store.manifest
        decision = decide(
            manifest.facts(manifest.retained()),
            self.retention.keep_last_n,
            self.retention.keep_best_k,
        )
        freed = 0
        for record in list(manifest.retained()):
            if record.epoch in decision.delete:
                freed += self._delete(record, "policy")
            elif record.epoch in decision.slim and record.kind == RESUME:
                saved = self.store.slim(record, best_dtype(self.retention.best_dtype))
                freed += saved
                self.report(
                    "slimmed",
                    file=record.file,
                    epoch=record.epoch,
                    bytes=record.size_bytes,
                    freed=saved,
                )
        cap = self.retention.max_total_size_gb * 1e9
        doomed, still_over = over_budget(manifest.facts(manifest.retained()), cap)
        for record in list(manifest.retained()):
            if record.epoch in doomed:
                freed += self._delete(record, "size cap")
        if still_over:
            self.report(
                "warning",
                message=f"best + latest checkpoints ({manifest.total_bytes() / 1e9:.2f} GB) exceed "
                f"retention.max_total_size_gb={self.retention.max_total_size_gb}; keeping both",
            )
        return freed

    def keep_only_best_and_latest(self) -> int:
        manifest = self.store.manifest
        doomed, _ = over_budget(manifest.facts(manifest.retained()), 0)
        return sum(
            self._delete(r, "disk space")
            for r in list(self.store.manifest.retained())
            if r.epoch in doomed
        )

    def _delete(self, record: CheckpointRecord, reason: str) -> int:
        freed = self.store.delete(record)
        self.report("deleted", file=record.file, epoch=record.epoch, bytes=freed, reason=reason)
        return freed

    def _ensure_space(self, estimate: int, epoch: int) -> None:
        """Free space after the save must stay above the threshold; drop all but best + latest
        first if needed, else StorageError (exit 4) before anything is written."""
        if self._fits(estimate):
            return
        self.keep_only_best_and_latest()
        if self._fits(estimate):
            return
        usage = disk_usage(self.store.directory)
        raise StorageError(
            f"not enough disk space to save the epoch {epoch} checkpoint in {self.store.directory}: "
            f"{usage.free / 1e9:.3f} GB free of {usage.total / 1e9:.3f} GB, the threshold is "
            f"{self.retention.disk_space_threshold_percent}% and the checkpoint needs about "
            f"{estimate / 1e6:.1f} MB"
        )

    def _fits(self, estimate: int) -> bool:
        usage = disk_usage(self.store.directory)
        return fits_on_disk(
            usage.free, usage.total, estimate, self.retention.disk_space_threshold_percent
        )
