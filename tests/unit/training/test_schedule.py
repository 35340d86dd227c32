from __future__ import annotations

import math

import pytest
import torch

from dataaug_multi_both.config.schema import TrainConfig, TrainerConfig
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.training.schedule import build_scheduler, fast_forward, warmup_steps_for


def _multipliers(trainer: TrainerConfig, steps_per_epoch: int, count: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, steps_per_epoch, trainer)
    values = []
    for _ in range(count):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_linear_is_warmup_then_decay_to_zero() -> None:
    # 6 steps in all, warm-up ceil(6 * 0.3) = 2: 0, 1/2, 1, then 3/4 ... 0, and 0 past the end
    trainer = TrainerConfig(max_epochs=2, warmup_ratio=0.3)
    assert _multipliers(trainer, 3, 8) == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_cosine_is_half_a_cosine_after_warmup() -> None:
    trainer = TrainerConfig(max_epochs=1, warmup_ratio=0.0, lr_scheduler_type="cosine")
    values = _multipliers(trainer, 4, 5)
    expected = [0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(5)]
    assert values == pytest.approx(expected)  # 1, 0.854, 0.5, 0.146, 0


def test_constant_with_warmup_and_polynomial_power() -> None:
    warm = TrainerConfig(max_epochs=1, warmup_ratio=0.5, lr_scheduler_type="constant_with_warmup")
    assert _multipliers(warm, 4, 5) == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0])
    squared = TrainerConfig(
        max_epochs=1,
        warmup_ratio=0.0,
        lr_scheduler_type="polynomial",
        lr_scheduler_kwargs={"power": 2.0, "lr_end": 0.0},
    )
    assert _multipliers(squared, 4, 5) == pytest.approx([1.0, 0.5625, 0.25, 0.0625, 0.0])


def test_a_schedule_restored_from_its_state_continues_the_same_curve() -> None:
    trainer = TrainerConfig(
        max_epochs=3,
        lr_scheduler_type="cosine_with_restarts",
        lr_scheduler_kwargs={"num_cycles": 2},
    )
    reference = _multipliers(trainer, 5, 15)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    first = build_scheduler(optimizer, 5, trainer)
    for _ in range(7):
        optimizer.step()
        first.step()
    state = first.state_dict()
    optimizer2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    second = build_scheduler(optimizer2, 5, trainer)
    second.load_state_dict(state)
    optimizer2.param_groups[0]["lr"] = second.get_last_lr()[0]
    continued = []
    for _ in range(8):
        continued.append(optimizer2.param_groups[0]["lr"])
        optimizer2.step()
        second.step()
    assert continued == pytest.approx(reference[7:])
    fresh = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    forwarded = build_scheduler(fresh, 5, trainer)
    fast_forward(forwarded, 7)
    assert fresh.param_groups[0]["lr"] == pytest.approx(reference[7])


def test_warmup_steps_round_up() -> None:
    assert warmup_steps_for(100, 0.1) == 10
    assert warmup_steps_for(5, 0.1) == 1


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        ({"lr_scheduler_type": "cosine_annealing"}, "trainer.lr_scheduler_type"),
        ({"lr_scheduler_kwargs": {"power": 2.0}}, "the arguments of linear: none"),
        (
            {
                "lr_scheduler_type": "cosine_with_restarts",
                "lr_scheduler_kwargs": {"num_cycles": 1.5},
            },
            "a whole number",
        ),
        ({"lr_scheduler_kwargs": {"num_cycles": "two"}}, "lr_scheduler_kwargs.num_cycles"),
        ({"lr_scheduler_type": "cosine_with_min_lr"}, "needs one of min_lr"),
    ],
)
def test_schedule_settings_are_checked(trainer: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({"trainer": trainer})
