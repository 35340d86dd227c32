"""`trial_dir/.lock`: a running training process marks its trial so that `cleanup` leaves it
alone. The lock holds the host and pid; a lock whose process is gone (on this host) is stale."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from dataaug_multi_both.checkpointing.atomic import atomic_write_text, remove_quietly
from dataaug_multi_both.layout import LOCK_FILE


def acquire(trial_dir: Path) -> Path:
    path = trial_dir / LOCK_FILE
    atomic_write_text(path, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    return path


def release(trial_dir: Path) -> None:
    path = trial_dir / LOCK_FILE
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        remove_quietly(path)


def is_running(trial_dir: Path) -> bool:
    """A live lock: its process runs on this host, or it was taken on another host (which
    we cannot check, so we assume it runs)."""
    try:
        owner = json.loads((trial_dir / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except (ProcessLookupError, ValueError, KeyError, TypeError):
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
