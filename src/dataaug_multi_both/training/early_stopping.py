"""Early stopping (Hugging Face's EarlyStoppingCallback, Lightning's EarlyStopping): stop
when `patience` evaluations in a row have not improved the objective by more than
`threshold`. Pure: the scores of every evaluation so far in, a reason (or None) out, so a
resumed run decides exactly as the uninterrupted one."""

from __future__ import annotations

import math
from collections.abc import Sequence


def evaluations_without_improvement(scores: Sequence[float | None], threshold: float) -> int:
    """Evaluations since the last one that beat the best before it by more than `threshold`
    (scores: higher is better; None or NaN never improves)."""
    best: float | None = None
    waited = 0
    for score in scores:
        if (
            score is not None
            and not math.isnan(score)
            and (best is None or score > best + threshold)
        ):
            best, waited = score, 0
        else:
            waited += 1
    return waited


def early_stopping_reason(
    scores: Sequence[float | None], patience: int | None, threshold: float, label: str
) -> str | None:
    """Why training stops now, or None (`patience` None: early stopping is off)."""
    if patience is None:
        return None
    waited = evaluations_without_improvement(scores, threshold)
    if waited < patience:
        return None
    return (
        f"early stopping: {label} has not improved by more than {threshold:g} "
        f"for {waited} evaluation(s) (trainer.early_stopping_patience={patience})"
    )
