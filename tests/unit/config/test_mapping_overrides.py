"""A mapping-valued key (trainer.lr_scheduler_kwargs) takes new entries from the command
line the way Trainer's lr_scheduler_kwargs does, without Hydra's `++`."""

from __future__ import annotations

import pytest

from dataaug_multi_both.config.compose import load_train_config
from dataaug_multi_both.errors import ConfigError


@pytest.mark.parametrize(
    "override",
    ["trainer.lr_scheduler_kwargs={num_cycles: 2}", "trainer.lr_scheduler_kwargs.num_cycles=2"],
)
def test_schedule_arguments_from_the_command_line(override: str) -> None:
    config = load_train_config(
        None, ["trainer.lr_scheduler_type=cosine_with_restarts", override], {}
    )
    assert config.trainer.lr_scheduler_kwargs == {"num_cycles": 2.0}


def test_an_argument_the_schedule_does_not_take_is_named() -> None:
    with pytest.raises(
        ConfigError, match="lr_scheduler_kwargs.power.*the arguments of linear: none"
    ):
        load_train_config(None, ["trainer.lr_scheduler_kwargs.power=2"], {})
