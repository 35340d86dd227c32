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
    batch, steps = trainer.batch_size, trainer.gradient_accumulation_steps
    smaller = (
        f"trainer.batch_size={batch // 2} trainer.gradient_accumulation_steps={steps * 2} (the "
        f"same effective batch of {batch * steps}), or "
        if batch > 1
        else ""
    )
    return OutOfMemory(
        f"out of memory on {device}{detail} with trainer.batch_size {batch}: try {smaller}a "
        f"smaller dataset.max_length (now {dataset.max_length}){_device_state(exc)}"
    )


def _device_state(exc: BaseException) -> str:
    """What CUDA adds after its first sentence (the GPU's capacity and what is free), cut
    at a sentence end; the CPU allocator's text only repeats the request: nothing."""
    text = first_line(exc)
    sentences = [s.strip() for s in text.split(". ") if "GPU" in s and "capacity" in s]
    state = ". ".join(sentences)
    return f"; {state[:200].rstrip('.')}" if state else ""
