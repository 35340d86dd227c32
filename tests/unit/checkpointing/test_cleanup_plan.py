"""What `cleanup` plans for one trial directory (nothing is deleted by planning)."""

from __future__ import annotations

from pathlib import Path

from dataaug_multi_both.checkpointing.atomic import TEMP_MARKER
from dataaug_multi_both.checkpointing.cleanup import ORPHANED_ONLY, POLICY, TrialFacts, plan_trial
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest, CheckpointRecord
from dataaug_multi_both.checkpointing.study_retention import RELEASE


def trial(tmp_path: Path) -> Path:
    """A trial with two recorded checkpoints (epoch 2 best), one stray .pt, a temp file."""
    directory = tmp_path / "trial_x" / "checkpoints"
    directory.mkdir(parents=True)
    records = []
    for epoch in (1, 2):
        (directory / f"epoch_{epoch:03d}.pt").write_bytes(b"x" * 100)
        records.append(
            CheckpointRecord(
                f"epoch_{epoch:03d}.pt", epoch, epoch, 0.1 * epoch, {}, "resume", 100, "0" * 64, "t"
            )
        )
    manifest = CheckpointManifest("x", "m", str(directory.parent), records)
    manifest.refresh_flags()
    manifest.write(directory)
    (directory / "epoch_009.pt").write_bytes(b"y" * 50)  # not in the manifest
    (directory / f".epoch_003.pt{TEMP_MARKER}123-abcd").write_bytes(b"z" * 10)
    return directory.parent


def kinds(plan: object) -> set[tuple[str, str]]:
    return {(a.kind, a.path.name) for a in plan.actions}  # type: ignore[attr-defined]


def test_running_trials_are_skipped(tmp_path: Path) -> None:
    plan = plan_trial(TrialFacts(trial(tmp_path), running=True), POLICY)
    assert not plan.actions and plan.skipped == ["trial_x: running"]


def test_orphans_and_temp_files_only(tmp_path: Path) -> None:
    root = trial(tmp_path)
    before = sorted(p.name for p in (root / "checkpoints").iterdir())
    plan = plan_trial(TrialFacts(root), ORPHANED_ONLY)
    assert ("delete_file", "epoch_009.pt") in kinds(plan)
    assert any(k == "delete_file" and TEMP_MARKER in name for k, name in kinds(plan))
    assert not any(k == "delete_record" for k, _ in kinds(plan))
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == before  # plan only


def test_a_released_study_trial_loses_every_checkpoint(tmp_path: Path) -> None:
    plan = plan_trial(TrialFacts(trial(tmp_path), study_decision=RELEASE), POLICY)
    assert {("delete_record", "epoch_001.pt"), ("delete_record", "epoch_002.pt")} <= kinds(plan)
    assert plan.bytes_to_free >= 200


def test_a_missing_recorded_file_is_a_record_fix(tmp_path: Path) -> None:
    root = trial(tmp_path)
    (root / "checkpoints" / "epoch_001.pt").unlink()
    plan = plan_trial(TrialFacts(root), ORPHANED_ONLY)
    assert ("fix_record", "epoch_001.pt") in kinds(plan)


def test_an_orphan_study_trial_directory_goes_whole(tmp_path: Path) -> None:
    root = trial(tmp_path)
    plan = plan_trial(TrialFacts(root, orphan_dir="trial directory no study references"), POLICY)
    assert kinds(plan) == {("delete_dir", "trial_x")}
