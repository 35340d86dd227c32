"""The background checkpoint writer: the loop goes on while a write runs, at most one write
is pending, and a failed write (a full disk) is raised in the training thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dataaug_multi_both.checkpointing.background import BackgroundWriter
from dataaug_multi_both.checkpointing.checkpointer import Checkpointer
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.store import CheckpointStore, file_sha256, serialize
from dataaug_multi_both.config.schema import RetentionConfig
from dataaug_multi_both.errors import StorageError
from tests.unit.checkpointing.test_store import payload, small_tmpfs  # noqa: F401  (fixture)


def test_submit_returns_at_once_and_the_next_submit_waits() -> None:
    writer = BackgroundWriter()
    release = threading.Event()
    order: list[str] = []

    def slow() -> str:
        release.wait(5)
        order.append("first")
        return "first"

    started = time.monotonic()
    writer.submit(slow)
    assert time.monotonic() - started < 1 and writer.busy
    threading.Timer(0.2, release.set).start()
    writer.submit(lambda: order.append("second"))  # waits for the first write
    assert order[0] == "first"
    writer.close()
    assert order == ["first", "second"] and not writer.busy


def test_a_failed_write_is_raised_by_the_next_wait() -> None:
    writer = BackgroundWriter()

    def fail() -> None:
        raise StorageError("no space left on device while writing x")

    writer.submit(fail)
    with pytest.raises(StorageError):
        writer.wait()
    assert writer.wait() is None  # raised once, then nothing is pending
    writer.close()


def checkpointer_in(directory: Path) -> Checkpointer:
    return Checkpointer(
        CheckpointStore(directory, "t", "val/criteria_matcher/f1", directory.parent),
        RetentionConfig(disk_space_threshold_percent=0.0, keep_last_n=10, keep_best_k=0),
        lambda action, **fields: None,
    )


def test_serialized_writes_in_the_background_are_verified_checkpoints(tmp_path: Path) -> None:
    directory = tmp_path / "checkpoints"
    checkpointer = checkpointer_in(directory)
    writer = BackgroundWriter()
    for epoch in (1, 2, 3):
        data = serialize(payload(epoch))
        writer.submit(
            lambda d=data, e=epoch: checkpointer.write_serialized(d, "resume", e, e, 0.1 * e, {})
        )
    writer.close()
    manifest = CheckpointManifest.read(directory)
    assert manifest is not None and [r.epoch for r in manifest.retained()] == [1, 2, 3]
    for record in manifest.retained():
        assert record.size_bytes == (directory / record.file).stat().st_size
        assert file_sha256(directory / record.file) == record.sha256


def test_disk_full_in_the_background_is_exit_4_in_the_caller(
    small_tmpfs: Path,  # noqa: F811  (the fixture imported above)
) -> None:
    directory = small_tmpfs / "checkpoints"
    checkpointer = checkpointer_in(directory)
    writer = BackgroundWriter()
    first = serialize(payload(1))  # ~240 kB: fits
    writer.submit(lambda: checkpointer.write_serialized(first, "resume", 1, 1, 0.1, {}))
    big = serialize(payload(2, size=400_000))  # ~4.8 MB: not on a 1 MB filesystem
    writer.submit(lambda: checkpointer.write_serialized(big, "resume", 2, 2, 0.2, {}))
    with pytest.raises(StorageError) as err:
        writer.close()
    assert err.value.exit_code == 4
    manifest = CheckpointManifest.read(directory)
    assert manifest is not None and [r.epoch for r in manifest.retained()] == [1]
    assert file_sha256(directory / "epoch_001.pt") == manifest.retained()[0].sha256
    assert sorted(p.name for p in directory.iterdir()) == ["epoch_001.pt", "manifest.json"]
