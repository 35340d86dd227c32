"""A study's status from its counts and its last exit code."""

from __future__ import annotations

import pytest

from dataaug_multi_both.hpo.study import study_status


@pytest.mark.parametrize(
    ("finished", "requested", "last_exit", "status"),
    [
        (10, 10, 0, "completed"),
        (10, 10, 1, "completed"),  # all finished, some failed: still completed
        (3, 10, 4, "failed"),  # stopped by a full disk
        (3, 10, None, "in_progress"),  # running now
        (3, 10, 0, "in_progress"),
    ],
)
def test_status(finished: int, requested: int, last_exit: int | None, status: str) -> None:
    assert study_status(finished, requested, last_exit) == status
