"""A study's worker makes a tracker per trial: what MLflow keeps per run must not pile up."""

from pathlib import Path

from mlflow.tracking._tracking_service import utils as mlflow_tracking_utils

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.tracking.mlflow_logger import RunTracker


def _one_trial(experiments: Path, n: int) -> RunTracker:
    tracker = RunTracker(TrackingConfig(), experiments)
    tracker.start(None, f"trial-{n}", {"learning_rate": 1e-5 * (n + 1)}, {})
    artifact = experiments / f"summary-{n}.json"
    artifact.write_text('{"f1": 0.5}')
    tracker.log_artifacts([artifact])
    tracker.finish()
    return tracker


def test_finished_runs_leave_nothing_in_the_process(tmp_path: Path) -> None:
    cache = mlflow_tracking_utils._artifact_repos_cache
    trackers = [_one_trial(tmp_path, n) for n in range(4)]
    run_ids = [t.run_id for t in trackers]

    # one client (one SQLAlchemy engine) per local store, not one per trial
    assert len({id(t.client) for t in trackers}) == 1
    # MLflow's per-run artifact repositories (a queue, locks, events each) are dropped
    assert not set(run_ids) & set(cache)
    # and the artifacts were logged all the same
    for tracker, run_id in zip(trackers, run_ids, strict=True):
        names = [a.path for a in tracker.client.list_artifacts(run_id)]
        assert names == [f"summary-{run_ids.index(run_id)}.json"]
