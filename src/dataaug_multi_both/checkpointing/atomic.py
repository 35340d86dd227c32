"""Atomic file writes: temp file in the target directory, fsync, rename, fsync the directory.

A crash at any moment leaves either the old file or the new one under the final name,
never a truncated one. The SHA256 of the content is computed while writing. Temp files
carry `TEMP_MARKER` in their name so that an interrupted write can be found and removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dataaug_multi_both.errors import StorageError

TEMP_MARKER = ".tmp-"
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class HashingWriter:
    """A binary file wrapper that hashes and counts every byte written through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None  # kept: torch.save wraps it in a RuntimeError

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            self._handle.write(data)  # a buffered binary file writes everything it is given
        except OSError as exc:
            self.error = exc
            raise
        self.sha256.update(data)
        self.size += memoryview(data).nbytes
        return memoryview(data).nbytes

    def flush(self) -> None:
        self._handle.flush()


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")


def atomic_write(path: Path, produce: Callable[[HashingWriter], None]) -> tuple[str, int]:
    """Write `path` atomically with `produce(writer)`; return (sha256 hex, size in bytes).

    Raises `StorageError` when the filesystem is full (the temp file is removed first).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    writer: HashingWriter | None = None
    try:
        with open(temp, "wb") as handle:
            writer = HashingWriter(handle)
            produce(writer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_directory(path.parent)
    except BaseException as exc:
        remove_quietly(temp)
        cause = writer.error if writer is not None and writer.error is not None else exc
        if isinstance(cause, OSError) and cause.errno in _NO_SPACE:
            free = _free_bytes(path.parent)
            raise StorageError(
                f"no space left on device while writing {path} ({free / 1e6:.1f} MB free)"
            ) from exc
        raise
    assert writer is not None
    return writer.sha256.hexdigest(), writer.size


def atomic_write_bytes(path: Path, data: bytes) -> tuple[str, int]:
    def produce(writer: HashingWriter) -> None:
        writer.write(data)

    return atomic_write(path, produce)


def atomic_write_text(path: Path, text: str) -> tuple[str, int]:
    return atomic_write_bytes(path, text.encode("utf-8"))


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _free_bytes(directory: Path) -> int:
    try:
        stats = os.statvfs(directory)
        return stats.f_bavail * stats.f_frsize
    except OSError:
        return 0
