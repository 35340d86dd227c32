"""One training epoch: data order, forward, loss, backward, optimizer steps.

The data order of epoch e is a pure function of (seed, e); the loss is checked for NaN/inf
at every step so that a diverging run stops with the epoch and step that went wrong.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
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

    def step(self, max_grad_norm: float) -> None:
        if max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.global_step += 1

    def require_finite(self, loss: torch.Tensor, epoch: int, dist: Distributed = SINGLE) -> None:
        """Stop on a NaN/inf loss; under torchrun every rank stops if one rank's loss is not
        finite (the others would wait for its gradients)."""
        if dist.any(not bool(torch.isfinite(loss))):
            lr = self.scheduler.get_last_lr()[0]
            raise TrainingError(
                f"non-finite loss ({float(loss)}) at epoch {epoch}, step {self.progress.global_step + 1}: "
                f"training diverged (learning rate {lr:.3g}); lower trainer.learning_rate"
            )


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


def train_epoch(
    context: EpochContext, data: PreparedData, epoch: int
) -> tuple[dict[str, float], EpochStats]:
    """Train one epoch; `context.before_step` runs before every batch (it may raise to stop)."""
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
    stats = EpochStats()
    started = time.perf_counter()
    accumulation = trainer.gradient_accumulation_steps
    sums = {"cm": 0.0, "eb": 0.0, "correct": 0.0, "rows": 0.0}
    opt.model.train()
    opt.optimizer.zero_grad(set_to_none=True)
    description = f"epoch {epoch}/{trainer.max_epochs}"
    with epoch_progress(c.console, description, len(batches), plain_lines=c.verbose) as bar:
        for index, rows in enumerate(batches):
            c.before_step()
            batch = {k: v.to(c.device) for k, v in data.builder.batch(table, rows).items()}
            stats.tokens += int(table.length[rows].sum())
            stats.padded_tokens += batch["input_ids"].numel()
            targets = {k: v.to(c.device) for k, v in data.builder.targets(table, rows).items()}
            with c.autocast():
                output = opt.model(**batch)
            loss = dual_head_loss(
                output,
                targets,
                c.weights.criteria_matcher,
                c.weights.evidence_binder,
                trainer.positive_class_weight,
            )
            opt.require_finite(loss.total, epoch, dist)
            opt.scaler.scale(loss.total / accumulation).backward()
            if (index + 1) % accumulation == 0 or index + 1 == len(batches):
                opt.step(trainer.max_grad_norm)
            n = len(rows)
            sums["cm"] += float(loss.criteria_matcher.detach()) * n
            sums["eb"] += float(loss.evidence_binder.detach()) * n
            predicted = (output.criteria_logits.detach() >= 0).float()
            sums["correct"] += float((predicted == targets["label"]).sum())
            sums["rows"] += n
            bar.advance(float(loss.total.detach()))
    stats.train_sec = time.perf_counter() - started
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
