"""A local store that moved with its experiments tree: its artifact locations follow, against
a real MLflow SQLite store."""

from __future__ import annotations

import shutil
from pathlib import Path

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.tracking.mlflow_logger import RunTracker
from dataaug_multi_both.tracking.relocation import artifacts_root, follow_moved_tree


def test_moving_the_tree_moves_every_location_under_its_root(tmp_path: Path) -> None:
    before = tmp_path / "a" / "experiments"
    tracker = RunTracker(TrackingConfig(), before)
    tracker.experiment_id()
    run_id = tracker.start(None, "run", {}, {})
    (tmp_path / "note.txt").write_text("hello")
    tracker.log_artifacts([tmp_path / "note.txt"])
    foreign = tracker.client.create_experiment(
        "foreign", artifact_location=(tmp_path / "x").as_uri()
    )

    after = tmp_path / "b"
    shutil.move(before, after)
    moved = RunTracker(TrackingConfig(), after)  # opening the store follows the move
    run = moved.client.get_run(run_id)
    assert run.info.artifact_uri == f"{artifacts_root(after)}/{run_id}/artifacts"
    assert [a.path for a in moved.client.list_artifacts(run_id)] == ["note.txt"]
    assert moved.owns_artifact_location(run_id)
    assert moved.client.get_experiment(foreign).artifact_location == (tmp_path / "x").as_uri()
    assert follow_moved_tree(after / "mlflow.db", artifacts_root(after)) == []  # idempotent


def test_a_store_not_set_up_yet_is_left_alone(tmp_path: Path) -> None:
    assert follow_moved_tree(tmp_path / "mlflow.db", artifacts_root(tmp_path)) == []
    assert not (tmp_path / "mlflow.db").exists()


def test_a_location_climbing_out_of_the_old_root_is_not_carried_along(tmp_path: Path) -> None:
    import sqlite3

    before = tmp_path / "a" / "experiments"
    tracker = RunTracker(TrackingConfig(), before)
    tracker.experiment_id()
    run_id = tracker.start(None, "run", {}, {})
    planted = f"{artifacts_root(before)}/../../../../etc/cron.d"
    with sqlite3.connect(before / "mlflow.db") as db:
        db.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", (planted, run_id))
    after = tmp_path / "b"
    shutil.move(before, after)
    moved = RunTracker(TrackingConfig(), after)
    assert moved.client.get_run(run_id).info.artifact_uri == planted  # left as it was
    assert not moved.owns_artifact_location(run_id)
