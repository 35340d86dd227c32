"""Retry pauses and message redaction."""

from __future__ import annotations

import random

import pytest

from dataaug_multi_both.errors import TrackingError
from dataaug_multi_both.tracking.retry import RetryPolicy, call_with_retries, redact


def test_pauses_double_with_jitter_and_stay_within_the_budget() -> None:
    pauses = RetryPolicy(max_retries=5, backoff_sec=1.0, max_wait_sec=100.0).pauses(
        random.Random(0)
    )
    assert len(pauses) == 5
    for k, pause in enumerate(pauses):
        assert 2**k <= pause <= 2**k * 1.25
    bounded = RetryPolicy(max_retries=10, backoff_sec=1.0, max_wait_sec=5.0).pauses(
        random.Random(0)
    )
    assert sum(bounded) <= 5.0 + 1e-9
    assert RetryPolicy(max_retries=0).pauses() == []


def test_a_call_that_keeps_failing_is_one_tracking_error_without_credentials() -> None:
    calls = []

    def failing() -> None:
        calls.append(1)
        raise ConnectionError("refused by http://bob:hunter2@127.0.0.1:5000/api")

    policy = RetryPolicy(max_retries=2, backoff_sec=0.01, max_wait_sec=0.05)
    with pytest.raises(TrackingError) as err:
        call_with_retries(failing, policy, "log metrics")
    assert len(calls) == 3 and "hunter2" not in err.value.message
    assert "log metrics" in err.value.message


def test_redact() -> None:
    assert redact("see https://u:p@host/x and http://h") == "see https://***@host/x and http://h"
