"""What a study's trials hold on disk, read once per change: a worker of a 1,000-trial study
asks after every trial how many bytes the trials keep and how large a trial's checkpoints
get. Reading every manifest each time costs O(N) reads per trial, O(N^2) per study; a
manifest is read again only when its file changed (size, mtime, inode), so a trial costs N
`stat` calls and the reads of the manifests that changed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.policy import RESUME
from dataaug_multi_both.errors import StorageError
from dataaug_multi_both.layout import MANIFEST_FILE, TrialPaths

Stamp = tuple[int, int, int] | None  # (size, mtime_ns, inode) of manifest.json; None: none


@dataclass(frozen=True)
class TrialDisk:
    retained_bytes: int  # the retained checkpoints' bytes, as the manifest records them
    largest_resume: int  # the largest resume checkpoint the trial has written (0: none)


NOTHING = TrialDisk(0, 0)


def manifest_stamp(trial_dir: Path) -> Stamp:
    try:
        st = os.stat(TrialPaths(trial_dir).checkpoints / MANIFEST_FILE)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def read_trial_disk(trial_dir: Path) -> TrialDisk:
    """A trial's checkpoint bytes from its manifest (an unreadable one counts as nothing:
    the trial's own run reports it)."""
    try:
        manifest = CheckpointManifest.read(TrialPaths(trial_dir).checkpoints)
    except StorageError:
        return NOTHING
    if manifest is None:
        return NOTHING
    sizes = [r.size_bytes for r in manifest.records if r.kind == RESUME]
    return TrialDisk(manifest.total_bytes(), max(sizes, default=0))


class TrialDiskCache:
    """`read_trial_disk`, remembered per trial until its manifest changes."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[Stamp, TrialDisk]] = {}
        self.reads = 0  # manifests read (for the scale benchmark and its test)

    def disk(self, trial_dir: Path) -> TrialDisk:
        stamp = manifest_stamp(trial_dir)
        seen = self._seen.get(trial_dir)
        if seen is not None and seen[0] == stamp:
            return seen[1]
        disk = NOTHING if stamp is None else read_trial_disk(trial_dir)
        self.reads += stamp is not None
        self._seen[trial_dir] = (stamp, disk)
        return disk

    def retained_bytes(self, trial_dirs: list[Path]) -> int:
        return sum(self.disk(d).retained_bytes for d in trial_dirs)

    def largest_resume(self, trial_dirs: list[Path]) -> int:
        return max((self.disk(d).largest_resume for d in trial_dirs), default=0)
