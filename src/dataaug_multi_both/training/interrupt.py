"""SIGINT/SIGTERM during training: remember the signal, stop at the next safe point."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType, TracebackType


class Terminated(KeyboardInterrupt):
    """SIGTERM where no safe stop is set up (set-up, between trials, a worker waiting): raised
    wherever the process is, as Ctrl-C raises KeyboardInterrupt, so the same clean-up runs."""


def interrupt_signal(exc: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt: SIGTERM for `Terminated`, else SIGINT."""
    return signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside: SIGTERM raises `Terminated` (once; a repeated SIGTERM, which schedulers
    send, is ignored so it cannot cut the clean-up short). Outside the main thread, nothing."""
    fired = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
