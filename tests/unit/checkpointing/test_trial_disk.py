"""A study's per-trial disk facts are read once per manifest change, not once per trial end
(the O(N) reads per trial, O(N^2) per study, that the scale benchmark found)."""

from __future__ import annotations

from pathlib import Path

from dataaug_multi_both.checkpointing.manifest import CheckpointManifest, CheckpointRecord
from dataaug_multi_both.checkpointing.trial_disk import TrialDiskCache


def make_trial(root: Path, name: str, sizes: list[tuple[str, int]]) -> Path:
    directory = root / name / "checkpoints"
    directory.mkdir(parents=True)
    records = [
        CheckpointRecord(f"epoch_{i:03d}.pt", i, i, 0.1, {}, kind, size, "0" * 64, "t")
        for i, (kind, size) in enumerate(sizes, start=1)
    ]
    CheckpointManifest(name, "m", str(directory.parent), records).write(directory)
    return directory.parent


def test_each_manifest_is_read_again_only_when_it_changed(tmp_path: Path) -> None:
    trials = [
        make_trial(tmp_path, f"trial_{i}", [("resume", 100 + i), ("weights-only", 10)])
        for i in range(5)
    ]
    trials.append(tmp_path / "trial_without_checkpoints")
    trials[-1].mkdir()
    cache = TrialDiskCache()
    assert cache.retained_bytes(trials) == sum(110 + i for i in range(5))
    assert cache.largest_resume(trials) == 104
    assert cache.reads == 5
    for _ in range(3):  # later trial ends: no manifest changed, none is read
        cache.retained_bytes(trials)
        cache.largest_resume(trials)
    assert cache.reads == 5
    changed = trials[2] / "checkpoints"
    manifest = CheckpointManifest.read(changed)
    assert manifest is not None
    manifest.records[0].retained = False  # the study released its resume checkpoint
    manifest.write(changed)
    assert cache.retained_bytes(trials) == sum(110 + i for i in range(5)) - 102
    assert cache.reads == 6


def test_an_unreadable_manifest_counts_as_nothing(tmp_path: Path) -> None:
    trial = make_trial(tmp_path, "trial_a", [("resume", 100)])
    (trial / "checkpoints" / "manifest.json").write_text("{not json")
    cache = TrialDiskCache()
    assert cache.retained_bytes([trial]) == 0 and cache.largest_resume([trial]) == 0
