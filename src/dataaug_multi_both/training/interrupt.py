"""SIGINT/SIGTERM during training: remember the signal, stop at the next safe point."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType


class Terminated(KeyboardInterrupt):
    """SIGTERM where no safe stop is set up (set-up, between trials, a worker waiting): raised
    wherever the process is, as Ctrl-C raises KeyboardInterrupt, so the same clean-up runs."""


def interrupt_signal(exc: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt: SIGTERM for `Terminated`, else SIGINT."""
    return signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


class _Termination:
    """A command's SIGTERM state, shared by both handlers: `sigterm_interrupts`'s and a
    training loop's `StopRequest` (only while a command runs inside `sigterm_interrupts`)."""

    active = False
    received = False


def sigterm_received() -> bool:
    """A SIGTERM reached this command (answered or not): start no new work."""
    return _Termination.active and _Termination.received


def _note_sigterm() -> bool:
    """Record a SIGTERM; True when it is the first."""
    first = not _Termination.received
    _Termination.received = True
    return first


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside: SIGTERM raises `Terminated` where no `StopRequest` is active. Only the
    first SIGTERM does (also when a training loop took it): a repeated one, which schedulers
    send, is ignored so it cannot cut the clean-up short. Outside the main thread, nothing."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if _note_sigterm():
            raise Terminated()

    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only
        return
    previous = signal.signal(signal.SIGTERM, handle)
    _Termination.active, _Termination.received = True, False
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        _Termination.active = False


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
        if signum == signal.SIGTERM:
            _note_sigterm()
        if self.signum is not None and signum == signal.SIGINT:
            signal.signal(signum, signal.SIG_DFL)
        self.signum = signum

    def __enter__(self) -> StopRequest:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[signum] = signal.signal(signum, self._handle)
        if sigterm_received():  # one that raised where Python drops exceptions (a __del__)
            self.signum = signal.SIGTERM
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
