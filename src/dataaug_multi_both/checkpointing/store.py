"""The checkpoint directory on disk: atomic writes, the manifest, slimming, deletion,
SHA256 verification. The only module that deletes checkpoint files."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

if TYPE_CHECKING:
    import torch

from dataaug_multi_both.checkpointing.atomic import (
    TEMP_MARKER,
    HashingWriter,
    atomic_write,
    atomic_write_bytes,
    remove_quietly,
)
from dataaug_multi_both.checkpointing.format import DECISION_THRESHOLD, KIND, slim_payload
from dataaug_multi_both.checkpointing.manifest import (
    CheckpointManifest,
    CheckpointRecord,
    MidEpochRecord,
)
from dataaug_multi_both.checkpointing.policy import WEIGHTS_ONLY
from dataaug_multi_both.errors import StorageError
from dataaug_multi_both.layout import CHECKPOINT_FILE, MID_EPOCH_FILE, checkpoint_name
from dataaug_multi_both.stamps import utc_timestamp

_CHUNK = 1 << 20


def _torch_save(payload: dict[str, Any]) -> Callable[[HashingWriter], None]:
    def produce(writer: HashingWriter) -> None:
        import torch

        torch.save(payload, cast(BinaryIO, writer))  # torch only calls write() and flush()

    return produce


def serialize(payload: dict[str, Any]) -> bytes:
    """The checkpoint file's bytes, made in memory (an in-memory snapshot that a background
    writer can put on disk while training goes on)."""
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verifies(path: Path, sha256: str) -> bool:
    """The file at `path` exists and its SHA256 is the one recorded (the only check of it)."""
    try:
        return path.is_file() and file_sha256(path) == sha256
    except OSError:
        return False


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; unreadable files are a StorageError."""
    import torch  # here, not at import: listings and cleanup never load a checkpoint

    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle errors, EOFError, ...
        raise StorageError(f"checkpoint {path} is unreadable: {type(exc).__name__}") from exc
    if not isinstance(payload, dict) or KIND not in payload:
        raise StorageError(f"{path} is not a dataaug-multi-both checkpoint")
    return payload


class CheckpointStore:
    def __init__(self, directory: Path, trial_id: str, metric_name: str, trial_dir: Path) -> None:
        self.directory = directory
        self.manifest = CheckpointManifest.read(directory) or CheckpointManifest(
            trial_id, metric_name, str(trial_dir)
        )

    def path_of(self, record: CheckpointRecord) -> Path:
        """The record's file: a bare name inside the checkpoint directory (the manifest
        reader refuses anything else)."""
        if not CHECKPOINT_FILE.fullmatch(record.file):
            raise StorageError(f"manifest entry {record.file!r:.80} is not a checkpoint name")
        return self.directory / record.file

    def remove_stray_temp_files(self) -> list[Path]:
        """Temp files of writes interrupted by a crash (never a finished checkpoint)."""
        if not self.directory.is_dir():
            return []
        stray = [p for p in self.directory.iterdir() if TEMP_MARKER in p.name and p.is_file()]
        for path in stray:
            remove_quietly(path)
        return stray

    def save(
        self,
        payload: dict[str, Any],
        epoch: int,
        step: int,
        metric_value: float | None,
        metrics: dict[str, float | None],
    ) -> CheckpointRecord:
        path = self.directory / checkpoint_name(epoch)
        sha256, size = atomic_write(path, _torch_save(payload))
        threshold = payload.get(DECISION_THRESHOLD)
        return self._add(
            path, payload[KIND], sha256, size, epoch, step, metric_value, metrics, threshold
        )

    def save_serialized(
        self,
        data: bytes,
        kind: str,
        epoch: int,
        step: int,
        metric_value: float | None,
        metrics: dict[str, float | None],
        decision_threshold: dict[str, Any] | None = None,
    ) -> CheckpointRecord:
        """`save` of a payload already serialized with `serialize`."""
        path = self.directory / checkpoint_name(epoch)
        sha256, size = atomic_write_bytes(path, data)
        return self._add(
            path, kind, sha256, size, epoch, step, metric_value, metrics, decision_threshold
        )

    def _add(
        self,
        path: Path,
        kind: str,
        sha256: str,
        size: int,
        epoch: int,
        step: int,
        metric_value: float | None,
        metrics: dict[str, float | None],
        decision_threshold: dict[str, Any] | None,
    ) -> CheckpointRecord:
        record = CheckpointRecord(
            file=path.name,
            epoch=epoch,
            step=step,
            metric_value=metric_value,
            metrics=dict(metrics),
            kind=kind,
            size_bytes=size,
            sha256=sha256,
            created=utc_timestamp(),
            decision_threshold=decision_threshold,
        )
        self.manifest.add(record)
        self.manifest.write(self.directory)
        mid = self.manifest.mid_epoch
        if mid is not None and step >= mid.step:  # the epoch's checkpoint is ahead of it
            self.drop_mid_epoch()
        return record

    def save_mid_epoch(
        self, data: bytes, epoch: int, step: int, batches_done: int
    ) -> MidEpochRecord:
        """Put a serialized mid-epoch resume payload on disk in place of the previous one
        (atomic rename), then record it. A crash between the two leaves a file whose SHA256
        is not the manifest's: the resume refuses it and falls back to an epoch checkpoint."""
        sha256, size = atomic_write_bytes(self.directory / MID_EPOCH_FILE, data)
        record = MidEpochRecord(epoch, step, batches_done, sha256, size, utc_timestamp())
        self.manifest.mid_epoch = record
        self.manifest.write(self.directory)
        return record

    def drop_mid_epoch(self) -> int:
        """Forget and remove the mid-epoch checkpoint (manifest first); returns bytes freed."""
        mid = self.manifest.mid_epoch
        if mid is None:
            return 0
        self.manifest.mid_epoch = None
        self.manifest.write(self.directory)
        unlink_in(self.directory, MID_EPOCH_FILE)
        return mid.size_bytes

    def slim(self, record: CheckpointRecord, dtype: torch.dtype | None) -> int:
        """Rewrite a resume checkpoint as weights-only, atomically; returns bytes freed."""
        path = self.path_of(record)
        payload = slim_payload(load_checkpoint(path), dtype)
        sha256, size = atomic_write(path, _torch_save(payload))
        freed = record.size_bytes - size
        record.kind, record.size_bytes, record.sha256 = WEIGHTS_ONLY, size, sha256
        self.manifest.write(self.directory)
        return freed

    def delete(self, record: CheckpointRecord) -> int:
        """Mark the record not retained (manifest first, so it never points at a missing
        file as retained), then remove the file; returns bytes freed."""
        record.retained = False
        self.manifest.refresh_flags()
        self.manifest.write(self.directory)
        unlink_in(self.directory, self.path_of(record).name)
        return record.size_bytes


def unlink_in(directory: Path, name: str) -> None:
    """Remove the entry `name` of `directory` through the directory's descriptor: a bare
    name, never a path, and a symlink is removed itself, never what it points at."""
    if "/" in name or name in ("", ".", ".."):
        raise StorageError(f"refusing to delete {name!r:.80}: not a name inside {directory}")
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise StorageError(f"cannot open {directory} to delete {name}: {exc.strerror}") from None
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)
