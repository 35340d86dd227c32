"""Which failures are out-of-memory, and the one line that says what to change."""

from __future__ import annotations

import pytest
import torch

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.training.memory import is_out_of_memory, out_of_memory


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (MemoryError(), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8"), True),
        (RuntimeError("shape mismatch"), False),
        (ValueError("out of memory"), False),  # not an allocator's error
    ],
)
def test_what_counts_as_out_of_memory(error: BaseException, expected: bool) -> None:
    assert is_out_of_memory(error) is expected


def test_the_message_names_the_request_and_the_settings() -> None:
    config = TrainConfig.from_dict({})
    cuda = out_of_memory(
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0"),
        config,
        "cuda:0",
    )
    assert cuda.exit_code == 1
    assert cuda.message.startswith("out of memory on cuda:0 (tried to allocate 2.00 GiB) with ")
    cpu = out_of_memory(RuntimeError("you tried to allocate 509607936 bytes."), config, "cpu")
    assert "(tried to allocate 486.00 MiB)" in cpu.message
    batch = config.trainer.batch_size
    assert f"try trainer.batch_size={batch // 2} trainer.gradient_accumulation_steps=2" in (
        cpu.message
    )
    assert "has a total capacity" not in cpu.message
    full = torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB"
        " of which 10.06 MiB is free. Process 7 has 79.18 GiB memory in use."
    )
    assert out_of_memory(full, config, "cuda:0").message.endswith(
        "GPU 0 has a total capacity of 79.19 GiB of which 10.06 MiB is free"
    )
    assert "\n" not in out_of_memory(MemoryError(), config, "cpu").message
