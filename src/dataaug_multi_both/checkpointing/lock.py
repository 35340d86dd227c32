"""OS locks (`flock`) on a trial (`trial_dir/.lock`) and on a study's retention
(`study_dir/.retention.lock`).

A training run holds its trial's lock from the moment it opens the directory until it ends:
a second process on the same trial stops at once (`TrialInUse`), and `cleanup` and study
retention leave a locked trial alone. The kernel drops the lock when its process dies, so a
lock left by a killed process never blocks anything; the file's content (host, pid) is only
a hint for the message. The lock file is opened without following a symlink.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dataaug_multi_both.errors import StorageError, TrialInUse
from dataaug_multi_both.layout import LOCK_FILE, STUDY_RETENTION_LOCK
from dataaug_multi_both.untrusted import read_json

_held: dict[Path, int] = {}  # trial directory -> descriptor of its lock, in this process


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def _try_lock(path: Path) -> int | None:
    """A descriptor holding an exclusive lock on `path`, or None if another holds it. Retries
    when the file was replaced between open and lock (a holder that released and removed it)."""
    for _ in range(10):
        fd = _open(path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device planted as the lock
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    return None


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM held back (raised again on leaving): a Ctrl-C never falls between the
    lock file's creation and its registration here, which would leave a file no one owns.
    Done with Python handlers, not the thread's signal mask: once torch has started threads
    the kernel gives a blocked signal to another thread, and Python still runs the handler."""
    caught: list[int] = []
    previous: dict[int, Any] = {}

    def hold(signum: int, frame: Any) -> None:
        caught.append(signum)

    with contextlib.suppress(ValueError):  # not the main thread: no Python handler runs here
        for deferred in (signal.SIGINT, signal.SIGTERM):
            previous[deferred] = signal.signal(deferred, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])


def acquire(trial_dir: Path) -> Path:
    """Lock the trial for this process; `TrialInUse` (exit 2) when another process has it."""
    path = trial_dir / LOCK_FILE
    key = trial_dir.resolve()
    with _signals_deferred():
        try:
            fd = None if key in _held else _try_lock(path)
        except OSError as exc:  # e.g. a symlink planted as .lock
            raise StorageError(f"cannot lock trial {trial_dir}: {path} {exc.strerror}") from None
        if fd is None:
            raise TrialInUse(
                f"{trial_dir.name} is in use by another process ({holder(trial_dir)}): "
                "wait for it to end, or train under another output.trial_id"
            )
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode())
        _held[key] = fd
    return path


def held_here(trial_dir: Path) -> bool:
    """This process holds the trial's lock."""
    return trial_dir.resolve() in _held


def release(trial_dir: Path) -> None:
    """Give up this process's lock on the trial (and remove the file, still locked, so that no
    one can take the old file between the removal and the unlock)."""
    fd = _held.pop(trial_dir.resolve(), None)
    if fd is None:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(trial_dir / LOCK_FILE)
    os.close(fd)


def is_running(trial_dir: Path) -> bool:
    """Another process (or this one) holds the trial's lock."""
    path = trial_dir / LOCK_FILE
    if trial_dir.resolve() in _held:
        return True
    if path.is_symlink() or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def held_unless_running(trial_dir: Path) -> Iterator[bool]:
    """While the block runs, the trial is locked by this process (True), or it is in use
    elsewhere and must be left alone (False)."""
    if not trial_dir.is_dir():
        yield True
        return
    held_before = held_here(trial_dir)
    try:
        acquire(trial_dir)
    except TrialInUse:
        yield False
        return
    except BaseException:  # a Ctrl-C held back during acquire, raised once it was recorded
        if not held_before:
            release(trial_dir)
        raise
    try:
        yield True
    finally:
        release(trial_dir)


@contextlib.contextmanager
def study_retention_lock(study_dir: Path) -> Iterator[None]:
    """One worker at a time applies study retention (the others wait their turn)."""
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / STUDY_RETENTION_LOCK
    try:
        fd = _open(path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file")
    except OSError as exc:
        raise StorageError(f"cannot lock the study's retention: {path} {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def holder(trial_dir: Path) -> str:
    """Who holds the lock, as recorded in the file (a hint: the file is not trusted)."""
    try:
        owner = read_json(trial_dir / LOCK_FILE, ValueError, max_bytes=4096)
        return f"pid {int(owner['pid'])} on {str(owner['host'])[:64]}"
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return "unknown process"


@contextlib.contextmanager
def waiting_lock(path: Path, wait_sec: float, on_wait: Callable[[], None]) -> Iterator[None]:
    """An exclusive lock on `path` (created, in a created directory), waiting for it at most
    `wait_sec` seconds (`on_wait` is called once if it must wait); StorageError after that.
    Whoever holds it may remove the file before leaving (then a waiter that locked the old
    file takes the new one: `_try_lock` checks that the path still names what it locked)."""
    deadline = time.monotonic() + wait_sec
    waited = False
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # again: the holder may remove it
            fd = _try_lock(path)
        except OSError as exc:
            raise StorageError(f"cannot take the lock {path}: {exc.strerror}") from None
        if fd is not None:
            break
        if time.monotonic() > deadline:
            raise StorageError(
                f"{path} has been held by another process for {wait_sec:.0f}s; if no other "
                "worker is starting this study, that process is stuck: stop it"
            )
        if not waited:
            on_wait()
            waited = True
        time.sleep(0.2)
    try:
        yield
    finally:
        os.close(fd)
