"""`checkpoints/manifest.json`: a record of every checkpoint ever saved in a trial.

Records are never removed: a checkpoint deleted by the policy keeps its record with
`retained: false`. The file is rewritten atomically after every change.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.policy import CheckpointFacts, best_epoch
from dataaug_multi_both.errors import StorageError
from dataaug_multi_both.layout import MANIFEST_FILE

FORMAT_VERSION = 1


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

    def facts(self) -> CheckpointFacts:
        return CheckpointFacts(self.epoch, self.metric_value, self.size_bytes, self.kind)


@dataclass
class CheckpointManifest:
    trial_id: str
    optimization_metric: str
    trial_dir: str = ""
    records: list[CheckpointRecord] = field(default_factory=list)

    def retained(self) -> list[CheckpointRecord]:
        return [r for r in self.records if r.retained]

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
        current = [r for r in self.records if r.retained or not _superseded(r, self.records)]
        best = best_epoch([r.facts() for r in current])
        retained = self.retained()
        latest = max((r.epoch for r in retained), default=None)
        for r in self.records:
            r.is_best = r.epoch == best and r in current
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
        }

    def write(self, directory: Path) -> None:
        text = json.dumps(json_safe(self.to_dict()), indent=1, allow_nan=False)
        atomic_write_text(directory / MANIFEST_FILE, text)

    @classmethod
    def read(cls, directory: Path) -> CheckpointManifest | None:
        path = directory / MANIFEST_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            records = [CheckpointRecord(**r) for r in data["records"]]
            return cls(
                data["trial_id"], data["optimization_metric"], data.get("trial_dir", ""), records
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"checkpoint manifest {path} is unreadable: {exc}") from exc


def _superseded(record: CheckpointRecord, records: list[CheckpointRecord]) -> bool:
    return any(
        r.epoch == record.epoch and r is not record for r in records[records.index(record) + 1 :]
    )


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
