"""What a run sends besides its epochs: params once each, the `best/` summary (pure)."""

from __future__ import annotations

import math

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.training.reporting import CONTRACT_PARAMS, best_summary, run_params
from dataaug_multi_both.training.run_state import flatten

F1 = "val/criteria_matcher/f1"


def test_each_config_value_is_one_param() -> None:
    config = TrainConfig()
    params = run_params(config)
    flat = {k: v for k, v in flatten(config.to_dict()).items() if not k.startswith("tracking.")}
    assert len(params) == len(flat)  # 67 with today's schema (was 79: 12 twins)
    assert list(params)[: len(CONTRACT_PARAMS)] == list(CONTRACT_PARAMS)
    assert not set(CONTRACT_PARAMS.values()) & set(params)
    assert params["model_id"] == config.model.model_id
    assert params["seed_torch"] == config.seeds.torch


def test_best_is_the_earliest_epoch_of_the_highest_value() -> None:
    history = [
        {F1: 0.2, "val/loss": 0.9, "train/loss": 1.0},
        {F1: 0.5, "val/loss": 0.7, "val/auc": None, "train/loss": 0.8},
        {F1: 0.5, "val/loss": 0.6, "train/loss": 0.7},
        {F1: math.nan, "val/loss": 0.5},
    ]
    assert best_summary(history, F1) == {
        "best/val/criteria_matcher/f1": 0.5,
        "best/val/loss": 0.7,
        "best/epoch": 2.0,
    }


def test_no_summary_when_the_metric_was_never_defined() -> None:
    assert best_summary([{F1: math.nan}, {"val/loss": 0.3}], F1) == {}
    assert best_summary([], F1) == {}
