"""A mid-epoch checkpoint whose SHA256 matches a planted manifest is still input from a
stranger: its epoch position and evaluations are checked, and anything but what the store
writes means "fall back to the epoch checkpoint", never a traceback."""

from __future__ import annotations

import math

import pytest
import torch

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.training.run_state import epoch_position_problem, restored_evaluations

GOOD = {
    "batches_done": 7,
    "sums": {"cm": 1.5, "eb": 2.0, "correct": 30, "rows": 40.0},
    "window": {"cm": 0.2, "eb": 0.1, "rows": 8},
}


def test_what_the_store_writes_is_accepted() -> None:
    assert epoch_position_problem({ckpt.EPOCH_POSITION: GOOD}, 7) is None


@pytest.mark.parametrize(
    "position",
    [
        None,
        torch.tensor([1, 2]),
        {**GOOD, "batches_done": 10**6},
        {**GOOD, "batches_done": True},
        {**GOOD, "sums": {**GOOD["sums"], "rows": math.inf}},
        {**GOOD, "sums": {**GOOD["sums"], "cm": 10**400}},
        {**GOOD, "sums": {**GOOD["sums"], "eb": -1.0}},
        {**GOOD, "window": "none"},
        {k: v for k, v in GOOD.items() if k != "window"},
    ],
)
def test_anything_else_is_a_problem_not_a_crash(position: object) -> None:
    problem = epoch_position_problem({ckpt.EPOCH_POSITION: position}, 7)
    assert isinstance(problem, str) and "epoch position" in problem


def test_evaluations_fall_back_to_the_history_unless_finite_numbers() -> None:
    history = [0.5, 0.6]
    assert restored_evaluations({ckpt.EVALUATIONS: [0.1, None, 2]}, history) == [0.1, None, 2.0]
    for bad in ([10**400], [math.nan], ["0.3"], [True], "x", None):
        assert restored_evaluations({ckpt.EVALUATIONS: bad}, history) == history
