"""Time stamps and run ids, written the same way everywhere."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator


def utc_timestamp() -> str:
    """ISO 8601 in UTC to the second, e.g. 2026-11-27T17:20:06Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_run_id() -> str:
    """A sortable, collision-resistant id for a trial or a study: local time + 6 hex digits."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@contextlib.contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block, in seconds, to `seconds[name]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = round(time.perf_counter() - started, 4)
