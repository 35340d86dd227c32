"""`checkpoints/manifest.json`: a record of every checkpoint ever saved in a trial.

Records are never removed: a checkpoint deleted by the policy keeps its record with
`retained: false`. The file is rewritten atomically after every change.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.policy import (
    RESUME,
    WEIGHTS_ONLY,
    CheckpointFacts,
    best_epoch,
)
from dataaug_multi_both.errors import StorageError
from dataaug_multi_both.layout import (
    CHECKPOINT_FILE,
    MANIFEST_FILE,
    MID_EPOCH_FILE,
    checkpoint_name,
)
from dataaug_multi_both.metric_names import metric_sign
from dataaug_multi_both.untrusted import read_json, require_mapping

FORMAT_VERSION = 1
MAX_RECORDS = 10_000  # one per saved epoch: far more than any run writes


@dataclass
class CheckpointRecord:
    file: str  # name inside the checkpoint directory, e.g. epoch_003.pt
    epoch: int
    step: int
    metric_value: float | None
    metrics: dict[str, float | None]
    kind: str  # "resume" | "weights-only"
    size_bytes: int
    sha256: str
    created: str  # ISO 8601, UTC
    is_best: bool = False
    is_latest: bool = False
    retained: bool = True
    decision_threshold: dict[str, Any] | None = None  # as stored in the checkpoint

    def facts(self, sign: float = 1.0) -> CheckpointFacts:
        """For the retention policy, which keeps the highest: `sign` -1 for a loss."""
        value = None if self.metric_value is None else sign * self.metric_value
        return CheckpointFacts(self.epoch, value, self.size_bytes, self.kind)


@dataclass
class MidEpochRecord:
    """The mid-epoch resume checkpoint (`trainer.save_steps`): one file, replaced in place,
    dropped once an epoch checkpoint at a later step is on disk. Not a retention record:
    it is never best, never slimmed, and counts only while it is the latest progress."""

    epoch: int  # the epoch in progress (1-based)
    step: int  # optimizer steps taken
    batches_done: int  # batches of that epoch done
    sha256: str
    size_bytes: int
    created: str
    file: str = MID_EPOCH_FILE


@dataclass
class CheckpointManifest:
    trial_id: str
    optimization_metric: str
    trial_dir: str = ""
    records: list[CheckpointRecord] = field(default_factory=list)
    mid_epoch: MidEpochRecord | None = None

    def latest_resume_file(self) -> tuple[str, int] | None:
        """The file a resume continues from (the mid-epoch checkpoint when it is ahead of
        the latest epoch's) and its step, or None."""
        latest = self.latest(RESUME)
        mid = self.mid_epoch
        if mid is not None and (latest is None or mid.step > latest.step):
            return mid.file, mid.step
        return (latest.file, latest.step) if latest else None

    def retained(self) -> list[CheckpointRecord]:
        return [r for r in self.records if r.retained]

    def facts(self, records: list[CheckpointRecord]) -> list[CheckpointFacts]:
        """`records` as the retention policy sees them: higher is better, so a loss as
        its negative."""
        sign = metric_sign(self.optimization_metric)
        return [r.facts(sign) for r in records]

    def latest(self, kind: str | None = None) -> CheckpointRecord | None:
        """The retained checkpoint of the latest epoch (of `kind`, if given)."""
        kept = [r for r in self.retained() if kind is None or r.kind == kind]
        return max(kept, key=lambda r: r.epoch, default=None)

    def best(self) -> CheckpointRecord | None:
        """The retained checkpoint flagged best, if it is still on disk."""
        return next((r for r in self.retained() if r.is_best), None)

    def by_epoch(self, epoch: int) -> CheckpointRecord:
        return next(r for r in reversed(self.records) if r.epoch == epoch)

    def by_file(self, name: str) -> CheckpointRecord | None:
        return next((r for r in reversed(self.records) if r.file == name), None)

    def add(self, record: CheckpointRecord) -> None:
        """Add a record; an older record of the same epoch (a replayed epoch) is superseded."""
        for old in self.records:
            if old.epoch == record.epoch:
                old.retained = False
        self.records.append(record)
        self.refresh_flags()

    def refresh_flags(self) -> None:
        """is_best: best metric among all records (earlier epoch on ties); is_latest: the
        most recent retained checkpoint."""
        superseded = _superseded(self.records)
        current = [r for r in self.records if r.retained or id(r) not in superseded]
        best = best_epoch(self.facts(current))
        retained = self.retained()
        latest = max((r.epoch for r in retained), default=None)
        current_ids = {id(r) for r in current}
        for r in self.records:
            r.is_best = r.epoch == best and id(r) in current_ids
            r.is_latest = r.retained and r.epoch == latest

    def total_bytes(self) -> int:
        return sum(r.size_bytes for r in self.retained())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "trial_id": self.trial_id,
            "optimization_metric": self.optimization_metric,
            "trial_dir": self.trial_dir,
            "records": [asdict(r) for r in self.records],
            "mid_epoch": asdict(self.mid_epoch) if self.mid_epoch else None,
        }

    def write(self, directory: Path) -> None:
        text = json.dumps(json_safe(self.to_dict()), indent=1, allow_nan=False)
        atomic_write_text(directory / MANIFEST_FILE, text)

    @classmethod
    def read(cls, directory: Path) -> CheckpointManifest | None:
        """The manifest in `directory` (None if there is none), checked entry by entry: a
        manifest may have been edited or planted, and it decides what is deleted."""
        path = directory / MANIFEST_FILE
        if not path.is_file():
            return None
        data = require_mapping(read_json(path, StorageError), path, StorageError)
        try:
            raw_records = data["records"]
            if not isinstance(raw_records, list):
                raise ManifestEntryError("records is not a list")
            if len(raw_records) > MAX_RECORDS:
                raise ManifestEntryError(f"records holds more than {MAX_RECORDS} entries")
            records = [_record(raw, i) for i, raw in enumerate(raw_records)]
            return cls(
                _field(data, "trial_id", str),
                _field(data, "optimization_metric", str),
                _field(data, "trial_dir", str, default=""),
                records,
                _mid_epoch(data.get("mid_epoch")),
            )
        except KeyError as exc:
            raise StorageError(f"checkpoint manifest {path} lacks {exc}") from None
        except ManifestEntryError as exc:
            raise StorageError(f"checkpoint manifest {path}: {exc}") from None


class ManifestEntryError(ValueError):
    """A manifest entry that is not what the store writes (the message names it)."""


_MISSING = object()


def _field(data: dict[str, Any], key: str, kind: Any, default: Any = _MISSING) -> Any:
    value = data.get(key, default)
    if value is _MISSING:
        raise KeyError(key)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ManifestEntryError(f"{key} is not an integer: {value!r:.40}")
    if kind is float:  # a number or null
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ManifestEntryError(f"{key} is not a number: {value!r:.40}")
        return float(value)
    if not isinstance(value, kind):
        raise ManifestEntryError(f"{key} has the wrong type ({type(value).__name__})")
    return value


def _record(raw: Any, index: int) -> CheckpointRecord:
    """One manifest entry, or ManifestEntryError naming it: `file` must be the bare name the
    store gives that epoch (never a path), the numbers numbers, the hash a SHA256."""
    where = f"records[{index}]"
    if not isinstance(raw, dict):
        raise ManifestEntryError(f"{where} is not an object")
    try:
        epoch = _field(raw, "epoch", int)
        file = _field(raw, "file", str)
        if not CHECKPOINT_FILE.fullmatch(file) or file != checkpoint_name(epoch):
            raise ManifestEntryError(
                f"{where}.file {file!r:.80} is not the checkpoint name of epoch {epoch}"
            )
        metrics = _field(raw, "metrics", dict)
        for name, value in metrics.items():
            _field({name: value}, name, float)
        sha256 = _field(raw, "sha256", str)
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ManifestEntryError(f"{where}.sha256 is not a SHA256 hex digest")
        kind = _field(raw, "kind", str)
        if kind not in (RESUME, WEIGHTS_ONLY):
            raise ManifestEntryError(f"{where}.kind is not a checkpoint kind: {kind!r:.40}")
        size, step = _field(raw, "size_bytes", int), _field(raw, "step", int)
        if epoch < 0 or step < 0 or size < 0:
            raise ManifestEntryError(f"{where} has a negative epoch, step or size")
        return CheckpointRecord(
            file=file,
            epoch=epoch,
            step=step,
            metric_value=_field(raw, "metric_value", float),
            metrics={str(k): (None if v is None else float(v)) for k, v in metrics.items()},
            kind=kind,
            size_bytes=size,
            sha256=sha256,
            created=_field(raw, "created", str),
            is_best=_field(raw, "is_best", bool, default=False),
            is_latest=_field(raw, "is_latest", bool, default=False),
            retained=_field(raw, "retained", bool, default=True),
            decision_threshold=_field(raw, "decision_threshold", dict | None, default=None),
        )
    except KeyError as exc:
        raise ManifestEntryError(f"{where} lacks {exc}") from None
    except ManifestEntryError as exc:
        if str(exc).startswith(where):
            raise
        raise ManifestEntryError(f"{where}.{exc}") from None


def _mid_epoch(raw: Any) -> MidEpochRecord | None:
    """The `mid_epoch` entry (absent in manifests written before it existed), checked as
    strictly as a record: the fixed file name, numbers as numbers, a SHA256."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ManifestEntryError("mid_epoch is not an object")
    try:
        if _field(raw, "file", str) != MID_EPOCH_FILE:
            raise ManifestEntryError(f"mid_epoch.file is not {MID_EPOCH_FILE}")
        numbers = {k: _field(raw, k, int) for k in ("epoch", "step", "batches_done", "size_bytes")}
        if min(numbers.values()) < 0:
            raise ManifestEntryError("mid_epoch has a negative number")
        sha256 = _field(raw, "sha256", str)
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ManifestEntryError("mid_epoch.sha256 is not a SHA256 hex digest")
        return MidEpochRecord(**numbers, sha256=sha256, created=_field(raw, "created", str))
    except KeyError as exc:
        raise ManifestEntryError(f"mid_epoch lacks {exc}") from None


def _superseded(records: list[CheckpointRecord]) -> set[int]:
    """ids of the records followed by a later record of the same epoch (a replayed epoch)."""
    seen: set[int] = set()
    superseded = set()
    for record in reversed(records):
        if record.epoch in seen:
            superseded.add(id(record))
        seen.add(record.epoch)
    return superseded


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
