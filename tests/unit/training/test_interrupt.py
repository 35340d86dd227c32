"""SIGINT/SIGTERM during training: real signals sent to this process."""

from __future__ import annotations

import os
import signal

from dataaug_multi_both.training.interrupt import StopRequest


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
