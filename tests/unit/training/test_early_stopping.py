from __future__ import annotations

import math

from dataaug_multi_both.training.early_stopping import (
    early_stopping_reason,
    evaluations_without_improvement,
)


def test_counts_evaluations_since_the_last_real_improvement() -> None:
    assert evaluations_without_improvement([], 0.0) == 0
    assert evaluations_without_improvement([0.5, 0.6, 0.6, 0.55], 0.0) == 2
    # 0.605 beats 0.6 by less than the threshold: not an improvement
    assert evaluations_without_improvement([0.5, 0.6, 0.605], 0.01) == 1
    assert evaluations_without_improvement([None, math.nan, 0.1], 0.0) == 0
    assert evaluations_without_improvement([0.3, None, math.nan], 0.0) == 2


def test_stops_when_patience_is_used_up() -> None:
    scores = [0.5, 0.7, 0.69, 0.68]
    assert early_stopping_reason(scores, None, 0.0, "f1") is None
    assert early_stopping_reason(scores, 3, 0.0, "f1") is None
    reason = early_stopping_reason(scores, 2, 0.0, "val/criteria_matcher/f1")
    assert reason is not None
    assert "val/criteria_matcher/f1" in reason and "2 evaluation(s)" in reason
    # a loss is scored as its negative: falling loss is improvement
    losses = [-0.9, -0.8, -0.7]
    assert early_stopping_reason(losses, 1, 0.0, "-val/criteria_matcher/loss") is None
