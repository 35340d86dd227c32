"""Running out of memory is a training error (exit 1, one line, with what to change), on the
GPU (`torch.OutOfMemoryError`) as on the CPU (the allocator's RuntimeError, MemoryError)."""

from __future__ import annotations

import re

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import TrainingError, first_line

# how PyTorch's allocators say it: CUDA's "CUDA out of memory", the CPU allocator's
# "DefaultCPUAllocator: can't allocate memory", MPS's "MPS backend out of memory"
_MARKERS = ("out of memory", "can't allocate memory", "not enough memory")
_REQUEST = re.compile(r"tried to allocate ([0-9.]+) ?([A-Za-z]*)", re.IGNORECASE)


class OutOfMemory(TrainingError):
    """The run needed more memory than the device (or the process's limit) has."""


def _amount(number: str, unit: str) -> str:
    """CUDA says "2.00 GiB", the CPU allocator "509607936 bytes": both as the former."""
    if unit.lower() != "bytes":
        return f"{number} {unit}".strip()
    size = float(number)
    for name in ("bytes", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} bytes" if name == "bytes" else f"{size:.2f} {name}"
        size /= 1024
    return f"{size:.2f} GiB"


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _MARKERS)


def out_of_memory(exc: BaseException, config: TrainConfig, device: str) -> OutOfMemory:
    """The one-line error for `exc`, with the settings that decide the memory a step needs."""
    trainer, dataset = config.trainer, config.dataset
    request = _REQUEST.search(str(exc))
    detail = f" (tried to allocate {_amount(*request.groups())})" if request else ""
    return OutOfMemory(
        f"out of memory on {device}{detail}: lower trainer.batch_size (now {trainer.batch_size}) "
        "and raise trainer.gradient_accumulation_steps (now "
        f"{trainer.gradient_accumulation_steps}) to keep the effective batch, or lower "
        f"dataset.max_length (now {dataset.max_length}); {type(exc).__name__}: "
        f"{first_line(exc)[:160]}"
    )
