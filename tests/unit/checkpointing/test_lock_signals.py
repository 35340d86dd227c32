"""A Ctrl-C while a trial lock is taken: real signals sent to this process."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from dataaug_multi_both.checkpointing import lock


def test_a_ctrl_c_during_the_lock_comes_after_it_is_recorded_also_with_other_threads(
    tmp_path: Path,
) -> None:
    """With a second thread running (torch starts some), the kernel may hand the signal to
    it; the lock still defers the KeyboardInterrupt until the lock is recorded."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    reached = False
    try:
        with pytest.raises(KeyboardInterrupt), lock._signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)  # the handler would have run by now: it is held back
            reached = True
    finally:
        release.set()
        other.join()
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_taking_the_lock_leaves_the_signal_handlers_as_they_were(tmp_path: Path) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    lock.acquire(tmp_path)
    try:
        assert lock.held_here(tmp_path)
        assert {s: signal.getsignal(s) for s in handlers} == handlers
    finally:
        lock.release(tmp_path)
    assert not lock.held_here(tmp_path) and not (tmp_path / ".lock").exists()
