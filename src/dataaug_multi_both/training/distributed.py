"""Data-parallel training under torchrun: who this process is, the process group, and the
few collectives the recipe needs.

Under `torchrun` the environment names the process (`WORLD_SIZE`, `RANK`, `LOCAL_RANK`);
without it everything here is a no-op for a single process, so one code path serves both.

Batches: the epoch's batches are drawn exactly as for one process but `world_size` times
larger (the same permutation, length grouping and seed per epoch), then each global batch is
dealt out row by row, rank r taking rows r, r + W, r + 2W... A global batch too short to give
every rank a row is padded by repeating its first rows (as torch's DistributedSampler pads),
so every rank runs the same number of steps. Effective batch size = `trainer.batch_size`
(per device) × world size × `trainer.gradient_accumulation_steps`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Distributed:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, wanted: torch.device) -> torch.device:
        """One GPU per local rank; the CPU is shared."""
        if self.enabled and wanted.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return wanted

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank."""
        if not self.enabled:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.enabled:
            return [value]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, value)
        return out

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on one (a stop request reaches all ranks at
        the same step, so that none waits in a collective the others left)."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([1 if flag else 0])
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return bool(tensor.item())

    def shard(self, batches: list[list[int]]) -> list[list[int]]:
        """This rank's part of each global batch (see the module docstring)."""
        if not self.enabled:
            return batches
        world = self.world_size
        return [(rows * world)[: max(len(rows), world)][self.rank :: world] for rows in batches]


SINGLE = Distributed()


def torch_device(setting: str) -> torch.device:
    """The device type `trainer.device` names (auto: CUDA if there is one)."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting.split(":")[0])


def from_environment() -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return Distributed(world, int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")))


def elastic_restart_count() -> int:
    """How often torchrun restarted this job (`--max-restarts`); 0 for a first attempt."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def elastic_run_id() -> str | None:
    return os.environ.get("TORCHELASTIC_RUN_ID")


def _attempt_store(dist: Distributed, timeout: datetime.timedelta) -> Any:
    """The job's key-value store (torchrun's, at MASTER_ADDR:MASTER_PORT), with keys prefixed
    by the restart attempt: after a `--max-restarts` restart the new ranks must not read the
    addresses the dead attempt's ranks published (gloo would connect to a closed port)."""
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = torch.distributed.TCPStore(
        os.environ.get("MASTER_ADDR", "127.0.0.1"),
        int(os.environ.get("MASTER_PORT", "29500")),
        dist.world_size,
        is_master=dist.is_main and not agent_hosts_it,
        timeout=timeout,
    )
    attempt = elastic_restart_count()
    return torch.distributed.PrefixStore(f"dataaug/{elastic_run_id()}/attempt-{attempt}", store)


@contextlib.contextmanager
def process_group(dist: Distributed, device: torch.device, timeout_sec: float) -> Iterator[None]:
    """Join the job's process group (NCCL on CUDA, gloo on CPU) for the block; every
    collective gives up after `timeout_sec` instead of hanging on a dead rank."""
    if not dist.enabled or torch.distributed.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(dist.local_rank)
    timeout = datetime.timedelta(seconds=timeout_sec)
    torch.distributed.init_process_group(
        backend="nccl" if device.type == "cuda" else "gloo",
        store=_attempt_store(dist, timeout),
        rank=dist.rank,
        world_size=dist.world_size,
        timeout=timeout,
    )
    try:
        yield
        # tear down together: a rank that leaves first can abort the other's gloo threads
        # ("terminate called without an active exception"); a rank that died is not waited for
        with contextlib.suppress(Exception):
            torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()
