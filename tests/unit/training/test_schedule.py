from __future__ import annotations

import pytest

from dataaug_multi_both.training.schedule import linear_warmup_decay, warmup_steps_for


def test_warmup_then_linear_decay() -> None:
    values = [linear_warmup_decay(s, warmup_steps=2, total_steps=6) for s in range(8)]
    assert values == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_no_warmup() -> None:
    assert linear_warmup_decay(0, 0, 4) == 1.0
    assert warmup_steps_for(100, 0.1) == 10
    assert warmup_steps_for(5, 0.1) == 1
