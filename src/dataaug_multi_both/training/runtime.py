"""Where a run computes: the device, mixed precision and the gradient scaler."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dataaug_multi_both.config.schema import TrainerConfig
from dataaug_multi_both.errors import TrainingError
from dataaug_multi_both.training.distributed import Distributed


@dataclass
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype
    use_amp: bool  # autocast to `amp_dtype` (CUDA only)
    scaler: torch.amp.GradScaler  # enabled for fp16 only

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.use_amp:
            return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()


def make_runtime(trainer: TrainerConfig, dist: Distributed, info: Callable[[str], None]) -> Runtime:
    """The device `trainer.device` names (this rank's GPU under torchrun), CPU threads, and
    mixed precision where it has an effect; `info` receives a note when it has none."""
    if trainer.num_threads:
        torch.set_num_threads(trainer.num_threads)
    wanted = trainer.device
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"trainer.device is {trainer.device!r} but CUDA is not available")
    device = dist.device(torch.device(wanted))
    amp_dtype = torch.bfloat16 if trainer.precision == "bf16" else torch.float16
    use_amp = trainer.mixed_precision and device.type == "cuda"
    if trainer.mixed_precision and not use_amp:
        info("note: trainer.mixed_precision has no effect on CPU; training in fp32")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    return Runtime(device, amp_dtype, use_amp, scaler)
