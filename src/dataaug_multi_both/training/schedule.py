"""Learning-rate schedule: linear warm-up, then linear decay to zero (pure)."""

from __future__ import annotations

import math


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
