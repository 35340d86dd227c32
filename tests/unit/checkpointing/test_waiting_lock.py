"""A lock that waits a bounded time, says once that it waits, and survives its file being
taken away by the holder."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataaug_multi_both.checkpointing.lock import waiting_lock
from dataaug_multi_both.errors import StorageError


def test_a_held_lock_is_waited_for_then_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "study" / "optuna_study.db.setup.lock"
    waits: list[str] = []
    with (
        waiting_lock(path, 10, lambda: waits.append("never")),
        pytest.raises(StorageError, match="held by another process"),
        waiting_lock(path, 0.5, lambda: waits.append("waiting")),
    ):
        pass
    assert waits == ["waiting"]
    with waiting_lock(path, 0.5, lambda: waits.append("again")):  # free once released
        pass
    assert waits == ["waiting"]


def test_the_holder_may_remove_the_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "study" / "x.setup.lock"
    with waiting_lock(path, 1, lambda: None):
        path.unlink()
        path.parent.rmdir()
    with waiting_lock(path, 1, lambda: None):  # made again
        assert path.is_file()
