"""Taking back what a run or a study wrote when it fails before it has started: a `train`
whose model or data cannot load, an `hpo` whose dataset is missing. Nothing half-made stays
behind for `list_studies` to miss and `cleanup` to guess about.

Only the files the run itself writes at start-up are removed, each by name through its
directory's descriptor (a symlink is removed, never followed); a directory goes only when
that leaves it empty, so a file someone else put there keeps it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path

from dataaug_multi_both.checkpointing.store import unlink_in
from dataaug_multi_both.errors import StorageError
from dataaug_multi_both.layout import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    HPO_LOG,
    LOGS_DIR,
    MANIFEST_FILE,
    SETUP_LOCK_SUFFIX,
    SPLIT_MANIFEST_FILE,
    STUDY_RETENTION_LOCK,
    TRAIN_LOG,
)

# what a run writes before its first epoch (its lock file is released by the lock itself)
RUN_START_FILES = (
    CONFIG_FILE,
    SPLIT_MANIFEST_FILE,
    f"{LOGS_DIR}/{TRAIN_LOG}",
    f"{CHECKPOINTS_DIR}/{MANIFEST_FILE}",
)
# what an hpo start writes before study.json (the database only when it is the study's own)
STUDY_START_FILES = (
    CONFIG_FILE,
    SPLIT_MANIFEST_FILE,
    f"{LOGS_DIR}/{HPO_LOG}",
    STUDY_RETENTION_LOCK,
)


def discard(directory: Path, names: Iterable[str]) -> bool:
    """Remove the files `names` (relative to `directory`), then the sub-directories and the
    directory they leave empty; True when `directory` is gone. A name whose directory is
    missing or not a directory is skipped; an error removing one is a StorageError."""
    names = list(names)
    for name in names:
        parent = (directory / name).parent
        if parent.is_dir() and not parent.is_symlink():
            unlink_in(parent, Path(name).name)
    parents = {(directory / name).parent for name in names} - {directory}
    for sub in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty, or already gone
            sub.rmdir()
    with contextlib.suppress(OSError):
        directory.rmdir()
    return not directory.exists()


def discard_unstarted_run(trial_dir: Path, release_lock: Callable[[], None]) -> bool:
    """A run directory this run created and that holds no checkpoint: its start-up files,
    then (once `release_lock` has removed the lock file, while still holding it) the
    directory if that leaves it empty. The lock file is the lock's own business: removed
    here by path, it could be a new run's that took the directory in between."""
    checkpoints = trial_dir / CHECKPOINTS_DIR
    if checkpoints.is_dir() and any(checkpoints.glob("*.pt")):
        release_lock()
        return False
    with contextlib.suppress(StorageError):  # what is left keeps the directory
        discard(trial_dir, RUN_START_FILES)
    release_lock()
    with contextlib.suppress(OSError):
        trial_dir.rmdir()
    return not trial_dir.exists()


def discard_unstarted_study(study_dir: Path, database: str | None) -> bool:
    """A study directory this `hpo` created and that has no study.json yet; `database`: the
    name of the study's own SQLite file in it (None when the study is stored elsewhere)."""
    files = [database, f"{database}-journal", f"{database}{SETUP_LOCK_SUFFIX}"] if database else []
    names = [*STUDY_START_FILES, *files]
    try:
        return discard(study_dir, names)
    except StorageError:
        return False


def discard_staging(directory: Path) -> None:
    """A staging directory this process created (an export being written) after a failure:
    removed whole; `shutil.rmtree` unlinks symlinks, never follows them."""
    import shutil

    if directory.is_dir() and not directory.is_symlink():
        shutil.rmtree(directory, ignore_errors=True)
