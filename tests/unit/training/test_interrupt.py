"""SIGINT/SIGTERM during training: real signals sent to this process."""

from __future__ import annotations

import os
import signal
import time

import pytest

from dataaug_multi_both.training.interrupt import (
    StopRequest,
    Terminated,
    sigterm_interrupts,
    sigterm_received,
)


def sigterm_self() -> None:
    """SIGTERM to this process, then time for Python to run its handler."""
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(50):
        time.sleep(0.01)


def test_a_repeated_sigterm_keeps_the_safe_stop() -> None:
    with StopRequest() as stop:
        ours = signal.getsignal(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # Slurm's own and the job script's
        assert stop.requested and stop.name == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is ours  # a third would still not kill


def test_a_second_ctrl_c_restores_the_immediate_exit() -> None:
    previous = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and signal.getsignal(signal.SIGINT) is not signal.SIG_DFL
        os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is previous


def test_sigterm_outside_training_raises_once_and_a_repeat_is_ignored() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with sigterm_interrupts():
        with pytest.raises(Terminated):
            sigterm_self()
        sigterm_self()  # the scheduler's repeat, during the clean-up: nothing raised
        assert sigterm_received()
    assert not sigterm_received() and signal.getsignal(signal.SIGTERM) is previous


def test_a_sigterm_the_training_loop_took_is_not_raised_again_after_it() -> None:
    with sigterm_interrupts():
        with StopRequest() as stop:
            sigterm_self()
        assert stop.requested
        sigterm_self()  # a repeat while the run cleans up after its safe stop: ignored
        with StopRequest() as later:  # no new training starts after a SIGTERM
            assert later.requested and later.name == "SIGTERM"
