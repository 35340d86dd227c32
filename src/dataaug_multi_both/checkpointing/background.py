"""One background thread that puts checkpoints on disk while training goes on.

The training loop serializes the epoch in memory (fast), hands the bytes over and goes on;
the thread writes, fsyncs, hashes, updates the manifest and applies retention. At most one
write is pending: the next hand-over, and every reader of the manifest, waits for it first.
An error of the write (a full disk: StorageError, exit 4) is raised by that wait, in the
training thread. A crash mid-write leaves what an atomic write leaves: the old files.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BackgroundWriter:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending: Future[Any] | None = None

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def submit(self, write: Callable[[], Any]) -> None:
        self.wait()
        self._pending = self._executor.submit(write)

    def wait(self) -> Any:
        """Block until the pending write is done; return its result or raise its error."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def close(self) -> None:
        """Wait for the pending write (its error is the caller's to handle) and stop."""
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)
