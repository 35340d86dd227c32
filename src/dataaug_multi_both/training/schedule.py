"""The optimizer and its learning-rate schedule: AdamW without weight decay on biases and
LayerNorm; the schedule is `transformers.get_scheduler`'s (`trainer.lr_scheduler_type`,
linear warm-up then linear decay to zero by default), over all optimizer steps of the run."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from transformers.optimization import get_scheduler

from dataaug_multi_both.config.schema import TrainerConfig
from dataaug_multi_both.errors import ConfigError, first_line


def warmup_steps_for(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


def build_optimizer(model: torch.nn.Module, trainer: TrainerConfig, device: torch.device) -> Any:
    """AdamW; biases and LayerNorm weights (any parameter under 2-D) get no weight decay."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        plain = param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        (no_decay if plain else decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": trainer.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=trainer.learning_rate,
        # one fused kernel per step instead of a Python loop over the parameters (CPU and
        # CUDA); the update is the same AdamW, deterministic on CPU
        fused=device.type in ("cpu", "cuda"),
    )


def steps_per_epoch(windows: int, trainer: TrainerConfig, world_size: int) -> int:
    """Optimizer steps in one epoch of `windows` training rows over `world_size` processes."""
    batches = math.ceil(windows / (trainer.batch_size * world_size))
    return math.ceil(batches / trainer.gradient_accumulation_steps)


def build_scheduler(optimizer: Any, steps: int, trainer: TrainerConfig) -> Any:
    """`trainer.lr_scheduler_type` over `steps * max_epochs` optimizer steps, the first
    `warmup_ratio` of them warming up. A LambdaLR: its state is the step count, so a resume
    rebuilds the same curve and continues it exactly."""
    total = steps * trainer.max_epochs
    kwargs: dict[str, Any] = dict(trainer.lr_scheduler_kwargs)
    if trainer.lr_scheduler_type == "cosine_with_restarts" and "num_cycles" in kwargs:
        kwargs["num_cycles"] = int(kwargs["num_cycles"])
    if "timescale" in kwargs:
        kwargs["timescale"] = int(kwargs["timescale"])
    try:
        return get_scheduler(
            trainer.lr_scheduler_type,
            optimizer,
            num_warmup_steps=warmup_steps_for(total, trainer.warmup_ratio),
            num_training_steps=total,
            scheduler_specific_kwargs=kwargs or None,
        )
    except (TypeError, ValueError) as exc:  # an argument transformers refuses
        raise ConfigError(
            f"trainer.lr_scheduler_type={trainer.lr_scheduler_type} with "
            f"trainer.lr_scheduler_kwargs={kwargs}: {first_line(exc)}"
        ) from None


def fast_forward(scheduler: Any, step: int) -> None:
    """Put a fresh schedule at optimizer step `step` (a continuation from weights alone): the
    learning rate is the one the schedule gives there, not the warm-up's first."""
    scheduler.last_epoch = step - 1
    with warnings.catch_warnings():  # "step() before optimizer.step()": intended here
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()  # sets each group's learning rate for `step`
