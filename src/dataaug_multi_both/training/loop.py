"""One training epoch: data order, forward, loss, backward, optimizer steps.

The data order of epoch e is a pure function of (seed, e); every batch's loss is checked for
NaN/inf, so that a diverging run stops with the epoch and step that went wrong.

On a GPU the step has no host-device synchronisation: the batch's losses stay on the device
(`LossLedger`) and are read back together every `SETTLE_EVERY` batches and before any step
that logs, evaluates or saves, so the host assembles the next batches while the device works.
Up to SETTLE_EVERY - 1 updates after a non-finite loss can run in memory before it is seen,
but reading back happens before the backward pass of any batch that logs, evaluates or saves,
so none of them ever reaches a checkpoint, a logged metric or an evaluation. On the CPU, where reading a value costs nothing,
every batch is read back at once, as before.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rich.console import Console

from dataaug_multi_both.config.schema import TaskWeights, TrainerConfig
from dataaug_multi_both.data.pipeline import PreparedData
from dataaug_multi_both.errors import TrainingError
from dataaug_multi_both.model.losses import dual_head_loss
from dataaug_multi_both.training.distributed import SINGLE, Distributed
from dataaug_multi_both.training.progress import epoch_progress
from dataaug_multi_both.training.run_state import TrainingProgress
from dataaug_multi_both.training.seeding import epoch_generator


@dataclass
class Optimisation:
    """What one optimizer step touches; each step is counted in `progress.global_step`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    progress: TrainingProgress

    def step(self, max_grad_norm: float) -> torch.Tensor | None:
        """One optimizer step; returns the gradient norm before clipping (None: no clipping)."""
        norm = None
        if max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.global_step += 1
        return norm

    def learning_rate(self) -> float:
        return float(self.scheduler.get_last_lr()[0])


SETTLE_EVERY = 10  # batches whose losses a GPU run reads back at once, at most


@dataclass(frozen=True)
class BatchLosses:
    """One batch's losses, still on the device: (criteria matcher, evidence binder, total,
    correct criteria predictions), with the step and learning rate it was computed at."""

    values: torch.Tensor
    rows: int
    step: int
    learning_rate: float


@dataclass
class LossLedger:
    """The batches whose losses have not been read back yet. `settle` reads them in one
    transfer, stops on the first non-finite loss (under torchrun every rank stops if one
    rank's loss is not finite: the others would wait for its gradients), and adds them, in
    batch order, to the epoch's running sums, the step window and the progress bar."""

    sums: dict[str, float]
    window: dict[str, float]
    pending: list[BatchLosses] = field(default_factory=list)

    def add(self, batch: BatchLosses) -> None:
        self.pending.append(batch)

    def settle(self, epoch: int, bar: Any, dist: Distributed = SINGLE) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        rows = torch.stack([b.values for b in pending]).tolist()  # one host-device sync
        bad = next(
            ((b, v[2]) for b, v in zip(pending, rows, strict=True) if not math.isfinite(v[2])),
            None,
        )
        if dist.any(bad is not None):
            batch, loss = bad if bad is not None else (pending[-1], "on another rank")
            raise TrainingError(
                f"non-finite loss ({loss}) at epoch {epoch}, step {batch.step}: training "
                f"diverged (learning rate {batch.learning_rate:.3g}); lower "
                "trainer.learning_rate"
            )
        for batch, (cm, eb, total, correct) in zip(pending, rows, strict=True):
            n = batch.rows
            self.sums["cm"] += cm * n
            self.sums["eb"] += eb * n
            self.window["cm"] += cm * n
            self.window["eb"] += eb * n
            self.window["rows"] += n
            self.sums["correct"] += correct
            self.sums["rows"] += n
            bar.advance(total)


MEGABATCH = 50  # batches per length-sorted group, as in Hugging Face's LengthGroupedSampler


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group_by_length: bool = True
) -> list[list[int]]:
    """The batches of epoch `epoch`, a pure function of (seed, epoch).

    Plain: a random permutation cut into batches. Grouped by length: the permutation is cut
    into megabatches of `MEGABATCH` batches, each sorted by input length, then the batches
    are shuffled, so that a batch holds inputs of similar length (less padding) while the
    order of batches stays random.
    """
    generator = epoch_generator(seed, epoch)
    order = torch.randperm(len(lengths), generator=generator).numpy()
    if group_by_length:
        size = MEGABATCH * batch_size
        order = np.concatenate(
            [
                chunk[np.argsort(-lengths[chunk], kind="stable")]
                for chunk in (order[i : i + size] for i in range(0, len(order), size))
            ]
            or [order]
        )
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if group_by_length:
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in shuffled]
    return batches


@dataclass
class EpochStats:
    """What one epoch of training processed, for throughput numbers (not metrics)."""

    train_sec: float = 0.0  # forward, backward and optimizer steps, batch assembly included
    samples: int = 0
    tokens: int = 0  # real (attention) tokens
    padded_tokens: int = 0  # tokens the model computed, padding included

    def as_dict(self) -> dict[str, float]:
        return {
            "train_sec": round(self.train_sec, 4),
            "samples": self.samples,
            "tokens": self.tokens,
            "padded_tokens": self.padded_tokens,
        }


@dataclass
class EpochPosition:
    """Where an epoch stands after an optimizer step: what a mid-epoch checkpoint keeps so
    that a resume continues the epoch exactly (the batches of an epoch are a pure function
    of (seed, epoch); the running sums make its metrics, and those of the step records, the
    same as without the stop)."""

    batches_done: int = 0
    sums: dict[str, float] = field(
        default_factory=lambda: {"cm": 0.0, "eb": 0.0, "correct": 0.0, "rows": 0.0}
    )
    window: dict[str, float] = field(default_factory=lambda: {"cm": 0.0, "eb": 0.0, "rows": 0.0})

    def state_dict(self) -> dict[str, Any]:
        return {
            "batches_done": self.batches_done,
            "sums": dict(self.sums),
            "window": dict(self.window),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> EpochPosition:
        sums = {k: float(state["sums"][k]) for k in ("cm", "eb", "correct", "rows")}
        window = {k: float(state["window"][k]) for k in ("cm", "eb", "rows")}
        return cls(int(state["batches_done"]), sums, window)


@dataclass
class StepWindow:
    """The optimizer steps since the last step record (`trainer.logging_steps`); `sums` is
    the epoch position's, so that a mid-epoch checkpoint keeps it."""

    sums: dict[str, float]
    started: float = field(default_factory=time.perf_counter)

    def record(self, opt: Optimisation, norm: torch.Tensor | None) -> dict[str, float]:
        """The window's mean losses, the learning rate now, the last gradient norm and
        throughput, as `train_step/...` metrics; the window starts again."""
        rows = max(1.0, self.sums["rows"])
        seconds = max(1e-9, time.perf_counter() - self.started)
        record = {
            "train_step/criteria_matcher/loss": self.sums["cm"] / rows,
            "train_step/evidence_binder/loss": self.sums["eb"] / rows,
            "train_step/learning_rate": float(opt.scheduler.get_last_lr()[0]),
            "train_step/samples_per_sec": self.sums["rows"] / seconds,
        }
        if norm is not None:
            record["train_step/grad_norm"] = float(norm)
        self.sums.update(dict.fromkeys(self.sums, 0.0))
        self.started = time.perf_counter()
        return record


@dataclass(frozen=True)
class EpochContext:
    """Everything an epoch needs besides its data and its number."""

    opt: Optimisation
    trainer: TrainerConfig
    weights: TaskWeights
    seed: int  # the data order of epoch e is a pure function of (seed, e)
    device: torch.device
    autocast: Callable[[], contextlib.AbstractContextManager[Any]]
    before_step: Callable[[], None]  # runs before every batch; may raise to stop
    console: Console
    verbose: bool = True
    dist: Distributed = SINGLE
    # after every optimizer step: (position, step record or None, the epoch's last step?);
    # step-level logging, evaluation and mid-epoch checkpoints hang here
    after_step: Callable[[EpochPosition, dict[str, float] | None, bool], None] | None = None
    # batches whose losses are read back together at most (None: 1 on the CPU, where reading
    # back costs nothing, else SETTLE_EVERY)
    settle_every: int | None = None


def step_is_due(trainer: TrainerConfig, step: int) -> bool:
    """Whether optimizer step `step` writes a step record, evaluates or saves: its batches'
    losses must be read back first."""
    every = (trainer.logging_steps, trainer.eval_steps, trainer.save_steps)
    return any(n and step % n == 0 for n in every)


def to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch on the training device; to a GPU from pinned memory without blocking the host
    (the copy is ordered before the kernels that read it)."""
    if device.type != "cuda":
        return {k: v.to(device) for k, v in tensors.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in tensors.items()}


def train_epoch(
    context: EpochContext,
    data: PreparedData,
    epoch: int,
    position: EpochPosition | None = None,
) -> tuple[dict[str, float], EpochStats]:
    """Train one epoch, from `position` (a mid-epoch resume) or its start; `context.before_step`
    runs before every batch (it may raise to stop)."""
    c = context
    opt, trainer, dist = c.opt, c.trainer, c.dist
    table = data.tables["train"]
    batches = dist.shard(
        epoch_batches(
            table.length,
            trainer.batch_size * dist.world_size,
            c.seed,
            epoch,
            trainer.group_by_length,
        )
    )
    position = position or EpochPosition()
    if position.batches_done > len(batches):
        raise TrainingError(
            f"the mid-epoch checkpoint has {position.batches_done} batches of epoch {epoch} "
            f"done, the epoch has {len(batches)}: not this run's data or batch size"
        )
    stats = EpochStats()
    started = time.perf_counter()
    accumulation = trainer.gradient_accumulation_steps
    window = StepWindow(position.window)
    ledger = LossLedger(position.sums, position.window)
    settle_every = c.settle_every or (1 if c.device.type == "cpu" else SETTLE_EVERY)
    opt.model.train()
    opt.optimizer.zero_grad(set_to_none=True)
    description = f"epoch {epoch}/{trainer.max_epochs}"
    with epoch_progress(c.console, description, len(batches), plain_lines=c.verbose) as bar:
        bar.advance_by(position.batches_done)
        for index in range(position.batches_done, len(batches)):
            rows = batches[index]
            c.before_step()
            batch = to_device(data.builder.batch(table, rows), c.device)
            stats.tokens += int(table.length[rows].sum())
            stats.padded_tokens += batch["input_ids"].numel()
            targets = to_device(data.builder.targets(table, rows), c.device)
            with c.autocast():
                output = opt.model(**batch)
            loss = dual_head_loss(
                output,
                targets,
                c.weights.criteria_matcher,
                c.weights.evidence_binder,
                trainer.positive_class_weight,
            )
            last = index + 1 == len(batches)
            steps = (index + 1) % accumulation == 0 or last
            step = opt.progress.global_step + 1
            predicted = (output.criteria_logits.detach() >= 0).float()
            values = [loss.criteria_matcher, loss.evidence_binder, loss.total]
            correct = (predicted == targets["label"]).sum()
            ledger.add(
                BatchLosses(
                    torch.stack([v.detach().float() for v in (*values, correct)]),
                    len(rows),
                    step,
                    opt.learning_rate(),
                )
            )
            if (
                len(ledger.pending) >= settle_every
                or (steps and step_is_due(trainer, step))
                or last
            ):
                ledger.settle(epoch, bar, dist)  # before the backward pass: see the docstring
            opt.scaler.scale(loss.total / accumulation).backward()
            if steps:
                norm = opt.step(trainer.max_grad_norm)
                logging = trainer.logging_steps
                record = (
                    window.record(opt, norm)
                    if logging and opt.progress.global_step % logging == 0
                    else None
                )
                position.batches_done = index + 1
                if c.after_step is not None:
                    c.after_step(position, record, last)
    stats.train_sec = time.perf_counter() - started
    sums = position.sums
    stats.samples = int(sums["rows"])
    if dist.enabled:  # the epoch's metrics over every rank's rows
        sums = {k: sum(part[k] for part in dist.gather(sums)) for k in sums}
    rows_seen = max(1.0, sums["rows"])
    metrics = {
        "train/criteria_matcher/loss": sums["cm"] / rows_seen,
        "train/criteria_matcher/accuracy": sums["correct"] / rows_seen,
        "train/evidence_binder/loss": sums["eb"] / rows_seen,
    }
    return metrics, stats
