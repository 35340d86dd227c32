"""Retries with exponential backoff and jitter, bounded in attempts and in total wait."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from dataaug_multi_both.errors import TrackingError, first_line
from dataaug_multi_both.redaction import redact_text

T = TypeVar("T")


def redact(text: str) -> str:
    """`text` without `user:password@` in its URLs nor `password=...` pairs (see
    `redaction.redact_text`)."""
    return redact_text(text)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_sec: float = 1.0  # first pause; doubles each retry
    max_wait_sec: float = 60.0  # total pause across all retries
    jitter: float = 0.25  # each pause is stretched by up to this fraction, at random

    def pauses(self, rng: random.Random | None = None) -> list[float]:
        """The pauses between attempts (pure given `rng`): at most `max_retries`, summing to
        at most `max_wait_sec`."""
        rng = rng or random.Random()
        pauses, total, delay = [], 0.0, self.backoff_sec
        for _ in range(self.max_retries):
            pause = min(delay * (1 + self.jitter * rng.random()), self.max_wait_sec - total)
            if pause <= 0:
                break
            pauses.append(pause)
            total += pause
            delay *= 2
        return pauses


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    describe: str,
    is_permanent: Callable[[BaseException], bool] = lambda exc: False,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried on failure per `policy`; the last failure becomes a TrackingError
    whose message is `describe` plus the cause (credentials redacted)."""
    pauses = policy.pauses()
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if is_permanent(exc) or attempt >= len(pauses):
                waited = sum(pauses[:attempt])
                cause = redact(first_line(exc))
                raise TrackingError(
                    f"{describe}: failed after {attempt + 1} attempt(s) over {waited:.1f}s: {cause[:300]}"
                ) from None
            sleep(pauses[attempt])
            attempt += 1
