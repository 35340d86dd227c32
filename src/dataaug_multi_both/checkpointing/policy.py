"""Retention policy: which checkpoints to keep, slim or delete (pure: facts in, sets out).

- the `keep_last_n` most recent checkpoints stay resume checkpoints;
- the `keep_best_k` best by the optimization metric stay, as weights-only unless also
  among the last N (ties: the earlier epoch wins; a missing/NaN value is worst);
- everything else is deleted;
- `over_budget`: if the retained checkpoints exceed the size budget, delete those that are
  neither the single best nor the latest, worst first; if best + latest alone exceed it,
  keep them and say so.
Acting on disk is `checkpointing.store`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RESUME = "resume"
WEIGHTS_ONLY = "weights-only"


@dataclass(frozen=True)
class CheckpointFacts:
    epoch: int
    metric: float | None  # higher is better; None or NaN = worst
    size_bytes: int
    kind: str  # RESUME | WEIGHTS_ONLY


@dataclass(frozen=True)
class RetentionDecision:
    keep_resume: frozenset[int]  # epochs that stay resume checkpoints
    keep_weights_only: frozenset[int]  # epochs that stay, slimmed if they are resume now
    delete: frozenset[int]

    @property
    def slim(self) -> frozenset[int]:
        return self.keep_weights_only


def _score(fact: CheckpointFacts) -> float:
    return -math.inf if fact.metric is None or math.isnan(fact.metric) else fact.metric


def rank_best(facts: Iterable[CheckpointFacts]) -> list[CheckpointFacts]:
    """Best first; ties broken by the earlier epoch."""
    return sorted(facts, key=lambda f: (-_score(f), f.epoch))


def best_epoch(facts: Sequence[CheckpointFacts]) -> int | None:
    return rank_best(facts)[0].epoch if facts else None


def decide(
    facts: Sequence[CheckpointFacts], keep_last_n: int, keep_best_k: int
) -> RetentionDecision:
    """Apply keep-last-N and keep-best-K to the retained checkpoints `facts`."""
    recent = {f.epoch for f in sorted(facts, key=lambda f: -f.epoch)[:keep_last_n]}
    best = {f.epoch for f in rank_best(facts)[:keep_best_k]}
    every = {f.epoch for f in facts}
    return RetentionDecision(
        keep_resume=frozenset(recent),
        keep_weights_only=frozenset(best - recent),
        delete=frozenset(every - recent - best),
    )


def over_budget(
    facts: Sequence[CheckpointFacts], max_total_bytes: float
) -> tuple[frozenset[int], bool]:
    """Epochs to delete so that the total fits `max_total_bytes`, worst first, sparing the
    single best and the latest; and whether best + latest alone still exceed it."""
    if not facts:
        return frozenset(), False
    spared = {best_epoch(facts), max(f.epoch for f in facts)}
    total = sum(f.size_bytes for f in facts)
    doomed: set[int] = set()
    for fact in reversed(rank_best(facts)):  # worst first
        if total <= max_total_bytes:
            break
        if fact.epoch in spared:
            continue
        doomed.add(fact.epoch)
        total -= fact.size_bytes
    return frozenset(doomed), total > max_total_bytes


def should_save(
    epoch: int,
    last_saved_epoch: int | None,
    is_new_best: bool,
    is_final: bool,
    min_interval_epochs: int,
) -> bool:
    """Save if `min_interval_epochs` have passed since the last save, or on a new best, or at
    the final epoch."""
    if is_new_best or is_final or last_saved_epoch is None:
        return True
    return epoch - last_saved_epoch >= min_interval_epochs


def is_new_best(value: float | None, history: Sequence[float | None]) -> bool:
    """Strictly better than every earlier value (ties keep the earlier epoch)."""
    fact = CheckpointFacts(0, value, 0, RESUME)
    score = _score(fact)
    return score > -math.inf and all(
        score > _score(CheckpointFacts(0, h, 0, RESUME)) for h in history
    )


def best_position(values: Sequence[float | None]) -> int | None:
    """Index of the highest value (the earlier on ties; None/NaN never), or None if none."""
    scored = [(v, -i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    return -max(scored)[1] if scored else None


def fits_on_disk(free: int, total: int, needed: int, threshold_percent: float) -> bool:
    """Whether writing `needed` bytes leaves at least `threshold_percent` of the disk free
    (and any space at all)."""
    left = free - needed
    return left > 0 and total > 0 and left / total * 100 >= threshold_percent
