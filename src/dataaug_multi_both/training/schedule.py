"""The optimizer and its learning-rate schedule: AdamW without weight decay on biases and
LayerNorm, linear warm-up, then linear decay to zero (the multiplier is a pure function)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from dataaug_multi_both.config.schema import TrainerConfig


def warmup_steps_for(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


def linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based).

    1. during warm-up it rises linearly from 0 to 1 over `warmup_steps` steps;
    2. then it falls linearly to 0 at `total_steps`;
    3. past `total_steps` (training extended by a resume) it stays at 0.
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


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
    """Warm-up over `trainer.warmup_ratio` of all steps, then linear decay to zero."""
    total = steps * trainer.max_epochs
    warmup = warmup_steps_for(total, trainer.warmup_ratio)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: linear_warmup_decay(step, warmup, total)
    )


def fast_forward(scheduler: Any, step: int) -> None:
    """Put a fresh schedule at optimizer step `step` (a continuation from weights alone): the
    learning rate is the one the schedule gives there, not the warm-up's first."""
    scheduler.last_epoch = step - 1
    with warnings.catch_warnings():  # "step() before optimizer.step()": intended here
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()  # sets each group's learning rate for `step`
