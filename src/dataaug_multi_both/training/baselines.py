"""Trivial predictors scored on the same split as the model: the reference points a metric
needs before it means anything (pure).

- all_absent: no criterion present, no evidence anywhere;
- all_present: every criterion present, with the whole post as its evidence span;
- train_rate: each (post, criterion) present with the criterion's positive rate in the
  training split (seeded draws), the whole post as evidence where present.
A baseline's decisions are made directly (its logits are +-`DECISION_LOGIT`), so any
threshold in (0, 1) gives the same predictions; its constant or binary scores put its ROC
AUC at or near 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dataaug_multi_both.data.pairs import PairSet
from dataaug_multi_both.training.metrics import SplitArrays, split_metrics
from dataaug_multi_both.training.scoring import arrays_for
from dataaug_multi_both.training.span_metrics import Span

BASELINES = ("all_absent", "all_present", "train_rate")
DECISION_LOGIT = 30.0
BASELINE_SEED = 0


def positive_rates(pairs: PairSet, post_indices: Sequence[int]) -> np.ndarray:
    """Per criterion: the share of `post_indices` that show it."""
    labels = np.array(pairs.label_matrix(), dtype=np.float64)
    if len(post_indices) == 0:
        return np.zeros(len(pairs.criteria))
    return labels[list(post_indices)].mean(axis=0)


def baseline_arrays(
    pairs: PairSet,
    post_indices: Sequence[int],
    train_rates: np.ndarray,
    seed: int = BASELINE_SEED,
) -> dict[str, SplitArrays]:
    """SplitArrays of each baseline on the posts `post_indices` (PairSet order)."""
    width = len(pairs.criteria)
    shape = (len(post_indices), width)
    draws = np.random.default_rng(seed).random(shape) < np.asarray(train_rates)[None, :]
    decisions = {
        "all_absent": np.zeros(shape, dtype=bool),
        "all_present": np.ones(shape, dtype=bool),
        "train_rate": draws,
    }
    return {
        name: arrays_for(
            pairs,
            post_indices,
            np.where(present, DECISION_LOGIT, -DECISION_LOGIT),
            _whole_post_spans(pairs, post_indices, present),
        )
        for name, present in decisions.items()
    }


def _whole_post_spans(
    pairs: PairSet, post_indices: Sequence[int], present: np.ndarray
) -> dict[int, Span | None]:
    width = len(pairs.criteria)
    return {
        post * width + c: (0, len(pairs.texts[post]))
        for row, post in enumerate(post_indices)
        for c in range(width)
        if present[row, c]
    }


def baseline_scores(
    pairs: PairSet, split: dict[str, tuple[str, ...]], key: str, names: Sequence[str], prefix: str
) -> dict[str, dict[str, float | None]]:
    """The metrics `names` (without prefix) of every baseline on split `key` of a split
    manifest's post ids, the rates taken from its training split."""
    row_of = {pid: i for i, pid in enumerate(pairs.post_ids)}
    rates = positive_rates(pairs, [row_of[p] for p in split["train"]])
    scored = baseline_arrays(pairs, [row_of[p] for p in split[key]], rates)
    any_threshold = np.full(len(pairs.criteria), 0.5)  # baselines decide without one
    return {
        name: {
            m: values[f"{prefix}/{m}"]
            for values in [split_metrics(scored[name], any_threshold, prefix)]
            for m in names
        }
        for name in BASELINES
    }
