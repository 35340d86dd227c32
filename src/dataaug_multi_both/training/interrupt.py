"""SIGINT/SIGTERM during training: remember the signal, stop at the next safe point."""

from __future__ import annotations

import contextlib
import signal
from types import FrameType, TracebackType


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into a flag checked between steps.

    A second SIGINT while stopping restores the default behaviour, so a user who presses
    Ctrl-C twice gets the usual immediate exit. A repeated SIGTERM changes nothing: schedulers
    send it more than once (Slurm signals every process of a job, and the job script forwards
    it too), and they follow it with SIGKILL when their grace period ends.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            signal.signal(signum, signal.SIG_DFL)
        self.signum = signum

    def __enter__(self) -> StopRequest:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
