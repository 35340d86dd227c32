"""Trivial predictors scored on the same split as the model: the reference points a metric
needs before it means anything (pure).

- all_absent: no criterion present, no evidence anywhere;
- all_present: every criterion present, with the whole post as its evidence span;
- train_rate: each (post, criterion) present with the criterion's positive rate in the
  training split (seeded draws), the whole post as evidence where present.
A baseline's decisions are made directly (its logits are +-`DECISION_LOGIT`), so any
threshold in (0, 1) gives the same predictions; its constant or binary scores put its ROC
AUC at or near 0.5. The matcher's loss scores probabilities, which hard 0/1 guesses do not
have: for it, train_rate is the rates themselves as probabilities (the prevalence predictor)
and the other two have no value.
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
    rows = [row_of[p] for p in split[key]]
    scored = baseline_arrays(pairs, rows, rates)
    any_threshold = np.full(len(pairs.criteria), 0.5)  # baselines decide without one
    scores = {
        name: {
            m: values[f"{prefix}/{m}"]
            for values in [split_metrics(scored[name], any_threshold, prefix)]
            for m in names
        }
        for name in BASELINES
    }
    if LOSS in names:  # a loss scores probabilities: the hard 0/1 guesses have none
        scores["all_absent"][LOSS] = scores["all_present"][LOSS] = None
        scores["train_rate"][LOSS] = prevalence_loss(pairs, rows, rates)
    return scores


LOSS = "criteria_matcher/loss"


def prevalence_loss(pairs: PairSet, rows: Sequence[int], rates: np.ndarray) -> float | None:
    """Binary cross-entropy of predicting each criterion's training rate as its
    probability for every post (the constant predictor a loss is compared with)."""
    if not rows:
        return None
    labels = np.array(pairs.label_matrix(), dtype=np.float64)[list(rows)]
    p = np.clip(np.asarray(rates, dtype=np.float64), 1e-7, 1 - 1e-7)[None, :]
    return float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())
