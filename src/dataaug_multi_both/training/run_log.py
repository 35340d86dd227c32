"""`logs/train.jsonl`: one JSON object per line (timestamp, event, epoch, step, metrics...).

Each line is flushed and fsynced as it is written, so a killed run loses no finished line.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.manifest import json_safe
from dataaug_multi_both.errors import StorageError


class RunLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # the checkpoint writer thread logs too
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(
        self,
        event: str,
        epoch: int | None = None,
        step: int | None = None,
        metrics: Mapping[str, float | None] | None = None,
        **fields: Any,
    ) -> None:
        record: dict[str, Any] = {
            "timestamp": time.time(),
            "event": event,
            "epoch": epoch,
            "step": step,
        }
        if metrics is not None:
            record["metrics"] = dict(metrics)
        record.update(fields)
        line = json.dumps(json_safe(record), sort_keys=False) + "\n"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        with self._lock:  # a symlink planted as the log is refused, never written through
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                raise StorageError(
                    f"{self.path} is a symlink: refusing to write through it"
                ) from None
            with open(fd, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the whole log atomically (used when a resume drops unconfirmed epochs)."""
        from dataaug_multi_both.checkpointing.atomic import atomic_write_text

        atomic_write_text(self.path, "".join(json.dumps(json_safe(r)) + "\n" for r in records))

    def records(self) -> list[dict[str, Any]]:
        """Every complete record (a torn last line from a crash, or any line that is not a JSON
        object, is skipped)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict):  # an edited line of another shape is not ours
                out.append(record)
        return out


class NullRunLog(RunLog):
    """The run log of a torchrun rank other than 0: rank 0 writes the one log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: str, *args: Any, **fields: Any) -> None:
        return None

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        return None

    def records(self) -> list[dict[str, Any]]:
        return []
