"""Resume state: the progress record and the run log's continuity after a resume."""

from __future__ import annotations

from dataaug_multi_both.checkpointing.manifest import CheckpointManifest, CheckpointRecord
from dataaug_multi_both.training.run_state import TrainingProgress, reconcile_run_log


def record(epoch: int, metrics: dict) -> CheckpointRecord:
    return CheckpointRecord(
        f"epoch_{epoch:03d}.pt", epoch, epoch * 10, 0.5, metrics, "resume", 1, "x" * 64, "t"
    )


def test_progress_round_trip() -> None:
    progress = TrainingProgress("t1", epoch=3, global_step=30, mlflow_run_id="r")
    again = TrainingProgress()
    again.load_state_dict(progress.state_dict())
    assert (again.trial_id, again.epoch, again.global_step, again.mlflow_run_id) == (
        "t1",
        3,
        30,
        "r",
    )


def test_epochs_after_the_resume_point_are_dropped_and_lost_lines_restored() -> None:
    manifest = CheckpointManifest("t", "m", records=[record(1, {"a": 1.0}), record(2, {"a": 2.0})])
    records = [
        {"event": "run_start", "epoch": 0},
        {"event": "epoch_end", "epoch": 1, "metrics": {"a": 1.0}},
        # epoch 2's line was lost in a crash after its checkpoint was written
        {"event": "epoch_end", "epoch": 3, "metrics": {"a": 3.0}},  # no checkpoint: replayed
        {"event": "checkpoint", "epoch": 3, "action": "saved"},
    ]
    kept, replayed = reconcile_run_log(records, 2, manifest)
    assert replayed == [3]
    ends = sorted((r["epoch"], r["metrics"]["a"]) for r in kept if r["event"] == "epoch_end")
    assert ends == [(1, 1.0), (2, 2.0)]
    assert not any(r.get("epoch") == 3 for r in kept)
    restored = next(r for r in kept if r["event"] == "epoch_end" and r["epoch"] == 2)
    assert restored["restored_from"] == "epoch_002.pt"
