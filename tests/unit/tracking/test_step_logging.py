"""`TrackingBridge.log_step`: step records at the global optimizer step, against a real local
MLflow store (SQLite under tmp_path); a dead server pauses them instead of stopping training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dataaug_multi_both.config.schema import TrackingConfig, TrainConfig
from dataaug_multi_both.errors import TrackingError
from dataaug_multi_both.training.reporting import TrackingBridge, TrackingContext

STEP = {"train_step/criteria_matcher/loss": 0.5, "train_step/learning_rate": 1e-4}


def config(**tracking: object) -> TrainConfig:
    values = {"max_retries": 0, "retry_backoff_sec": 0.01, **tracking}
    return dataclasses.replace(
        TrainConfig(), tracking=dataclasses.replace(TrackingConfig(), **values)
    )


def history(bridge: TrackingBridge, key: str) -> list[tuple[int, float]]:
    assert bridge.tracker is not None
    points = bridge.tracker.client.get_metric_history(bridge.tracker.run_id, key)
    return sorted((int(m.step), float(m.value)) for m in points)


@pytest.fixture
def bridge(tmp_path: Path) -> TrackingBridge:
    bridge = TrackingBridge(config(), tmp_path)
    bridge.start(None, "abc", TrackingContext())
    return bridge


def test_each_call_is_one_point_per_metric_at_the_optimizer_step(bridge: TrackingBridge) -> None:
    bridge.log_step(50, STEP)
    bridge.log_step(100, {**STEP, "train_step/learning_rate": 5e-5, "train_step/nan": float("nan")})

    assert history(bridge, "train_step/learning_rate") == [(50, 1e-4), (100, 5e-5)]
    assert history(bridge, "train_step/criteria_matcher/loss") == [(50, 0.5), (100, 0.5)]
    assert history(bridge, "train_step/nan") == []  # non-finite values are not sent


def test_step_records_do_not_disturb_the_epoch_steps_a_resume_asks_for(
    bridge: TrackingBridge,
) -> None:
    bridge.log_step(50, STEP)
    bridge.log_epoch(1, {"system/epoch_duration_sec": 1.0}, lambda: "")
    assert bridge.tracker is not None
    assert bridge.tracker.logged_steps() == {1}


def test_a_reopened_run_does_not_get_the_steps_it_has_twice(tmp_path: Path) -> None:
    first = TrackingBridge(config(), tmp_path)
    run_id = first.start(None, "abc", TrackingContext())
    first.log_step(50, STEP)
    first.log_step(100, STEP)

    resumed = TrackingBridge(config(), tmp_path)
    assert resumed.start(run_id, "abc", TrackingContext()) == run_id
    for step in (50, 100, 150):  # replayed from a checkpoint at step 0
        resumed.log_step(step, STEP)

    assert [s for s, _ in history(resumed, "train_step/learning_rate")] == [50, 100, 150]


def test_without_tracking_it_is_a_no_op(tmp_path: Path) -> None:
    bridge = TrackingBridge(config(backend="none"), tmp_path)
    bridge.log_step(1, STEP)
    assert not list(tmp_path.iterdir())  # no store was made


def test_a_dead_server_warns_once_and_training_goes_on(
    bridge: TrackingBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    assert bridge.tracker is not None
    alive = bridge.tracker.client
    bridge.tracker.client = MlflowClient(tracking_uri="http://127.0.0.1:9")  # nothing listens
    bridge.log_step(50, STEP)
    bridge.log_step(100, STEP)  # paused: not even tried

    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "step metrics are not sent until an epoch gets through" in err

    with pytest.raises(TrackingError, match="resume with"):  # the epoch decides
        bridge.log_epoch(1, {"system/epoch_duration_sec": 1.0}, lambda: "resume with X")

    bridge.tracker.client = alive  # the server is back: an epoch gets through, steps go again
    bridge.log_epoch(1, {"system/epoch_duration_sec": 1.0}, lambda: "")
    bridge.log_step(150, STEP)
    assert history(bridge, "train_step/learning_rate") == [(150, 1e-4)]
