"""Metric names and definitions (pure numpy; checked by hand and against scikit-learn in
tests/unit/training/test_metrics.py). docs/metrics.md is the user-facing table.

Every metric is computed from a `SplitArrays`: one row per post, one column per criterion.
Criteria matcher (a post's row is its multi-label prediction; probability >= threshold):
- accuracy: over all (post, criterion) cells;
- precision / recall / f1: per criterion over posts, unweighted mean over criteria (macro);
- micro_f1: F1 of tp / fp / fn summed over all cells;
- samples_f1: F1 of each post's predicted criteria against its gold criteria, mean over posts;
- auc: ROC AUC per criterion, macro mean over the criteria with both classes in the split;
- per criterion: precision_<S>, recall_<S>, f1_<S>, auc_<S>;
- loss: binary cross-entropy of the post-level logits (max over the post's windows).
  A 0/0 ratio counts as 0 everywhere (scikit-learn's zero_division=0).
Evidence binder, over (criterion, post) pairs:
- exact_match, char_precision, char_recall, char_f1, token_f1: mean of `span_scores` over
  the pairs with aligned gold evidence (SQuAD v2 "HasAns");
- no_answer_accuracy: share of the pairs without evidence (label 0, "NoAns") where no span
  is predicted;
- has_answer: accuracy of the evidence / no-evidence decision over all pairs (gold: label).
A metric whose subset is empty in a split is missing (None), never 0 or 1.

All values come from `metric_values`, which takes a matrix of post weights: one row of ones
gives the metrics of the split, bootstrap resample counts give one value per resample, so
point estimates and confidence intervals share one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dataaug_multi_both.metric_names import PER_CRITERION_METRICS, SPAN_METRICS


def probabilities_of(logits: np.ndarray) -> np.ndarray:
    """The criteria matcher's probabilities: the sigmoid of its logits (float64)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


@dataclass(frozen=True)
class SplitArrays:
    """What the metrics of one split are computed from; rows are posts, columns criteria."""

    criteria: tuple[str, ...]
    labels: np.ndarray  # int [P, C]: 1 = the post shows the criterion
    logits: np.ndarray  # float [P, C]: the matcher's post-level logit (max over windows)
    evidence_predicted: np.ndarray  # bool [P, C]: the binder predicted a span
    span_scores: np.ndarray  # float [P, C, len(SPAN_METRICS)]; NaN outside `has_span`
    has_span: np.ndarray  # bool [P, C]: a positive pair with aligned gold evidence (HasAns)

    @property
    def probabilities(self) -> np.ndarray:
        return probabilities_of(self.logits)

    def subset_sizes(self) -> dict[str, int]:
        positive = self.labels == 1
        return {
            "posts": int(self.labels.shape[0]),
            "pairs": int(self.labels.size),
            "positive_pairs": int(self.has_span.sum()),
            "positive_pairs_unaligned": int((positive & ~self.has_span).sum()),
            "negative_pairs": int((~positive).sum()),
        }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (zero_division=0)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _mean_where_defined(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (an empty subset: the metric is missing)."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC (Mann-Whitney U, ties count half) of one criterion under each row of post
    weights [B, P]; NaN for a row in which one class has no weight."""
    if len(scores) == 0:
        return np.full(len(weights), np.nan)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, positive = scores[order], labels[order] == 1
    w = weights[:, order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    pos = np.add.reduceat(w * positive, starts, axis=1)  # [B, tie groups]
    neg = np.add.reduceat(w * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each group
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _mean_where_defined(wins, pos.sum(axis=1) * neg.sum(axis=1))


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of one set of labels and scores; None for a single class."""
    y = np.asarray(labels)
    value = weighted_auc(y, np.asarray(scores, np.float64), np.ones((1, len(y))))[0]
    return None if math.isnan(value) else float(value)


def _bce_per_cell(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x, y = logits.astype(np.float64), labels.astype(np.float64)
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def predicted_labels(arrays: SplitArrays, thresholds: np.ndarray) -> np.ndarray:
    """int [P, C]: probability >= the criterion's threshold."""
    return (arrays.probabilities >= np.asarray(thresholds)[None, :]).astype(np.int64)


def metric_values(
    arrays: SplitArrays, thresholds: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Every metric (keys without split prefix) under each row of post weights [B, P]:
    one value per row, NaN where the metric's subset has no weight."""
    w = weights.astype(np.float64)
    metrics = _criteria_values(arrays, predicted_labels(arrays, thresholds), w)
    metrics.update(_evidence_values(arrays, w))
    empty = w.sum(axis=1) == 0  # no post at all: every metric is missing
    return {name: np.where(empty, np.nan, value) for name, value in metrics.items()}


def _criteria_values(
    arrays: SplitArrays, predicted: np.ndarray, w: np.ndarray
) -> dict[str, np.ndarray]:
    y, p = arrays.labels == 1, predicted == 1
    tp, fp, fn = w @ (y & p), w @ (~y & p), w @ (y & ~p)  # [B, C]
    precision, recall, f1 = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _f1(tp, fp, fn)
    post_tp, post_fp, post_fn = (m.sum(axis=1) for m in (y & p, ~y & p, y & ~p))
    cells = w.sum(axis=1) * y.shape[1]
    aucs = np.stack(
        [weighted_auc(arrays.labels[:, c], arrays.logits[:, c], w) for c in range(y.shape[1])],
        axis=1,
    )
    defined = ~np.isnan(aucs)
    values = {
        "criteria_matcher/loss": _mean_where_defined(
            w @ _bce_per_cell(arrays.logits, arrays.labels).sum(1), cells
        ),
        "criteria_matcher/accuracy": _mean_where_defined(w @ (y == p).sum(axis=1), cells),
        "criteria_matcher/precision": precision.mean(axis=1),
        "criteria_matcher/recall": recall.mean(axis=1),
        "criteria_matcher/f1": f1.mean(axis=1),
        "criteria_matcher/micro_f1": _f1(tp.sum(1), fp.sum(1), fn.sum(1)),
        "criteria_matcher/samples_f1": _ratio(w @ _f1(post_tp, post_fp, post_fn), w.sum(axis=1)),
        "criteria_matcher/auc": _mean_where_defined(
            np.where(defined, aucs, 0.0).sum(axis=1), defined.sum(axis=1)
        ),
    }
    for c, name in enumerate(arrays.criteria):
        values[f"criteria_matcher/precision_{name}"] = precision[:, c]
        values[f"criteria_matcher/recall_{name}"] = recall[:, c]
        values[f"criteria_matcher/f1_{name}"] = f1[:, c]
        values[f"criteria_matcher/auc_{name}"] = aucs[:, c]
    return values


def _evidence_values(arrays: SplitArrays, w: np.ndarray) -> dict[str, np.ndarray]:
    positive = arrays.labels == 1
    negative = ~positive
    correct_decision = arrays.evidence_predicted == positive
    values = {
        "evidence_binder/has_answer": _mean_where_defined(
            w @ correct_decision.sum(axis=1), w.sum(axis=1) * positive.shape[1]
        ),
        "evidence_binder/no_answer_accuracy": _mean_where_defined(
            w @ (negative & ~arrays.evidence_predicted).sum(axis=1), w @ negative.sum(axis=1)
        ),
    }
    span_count = w @ arrays.has_span.sum(axis=1)
    scores = np.where(arrays.has_span[..., None], arrays.span_scores, 0.0).sum(axis=1)  # [P, M]
    for m, name in enumerate(SPAN_METRICS):
        values[f"evidence_binder/{name}"] = _mean_where_defined(w @ scores[:, m], span_count)
    return values


def split_metrics(
    arrays: SplitArrays, thresholds: np.ndarray, prefix: str
) -> dict[str, float | None]:
    """The metrics of the whole split, keys `{prefix}/criteria_matcher/*` and
    `{prefix}/evidence_binder/*`; None for a metric whose subset is empty."""
    values = metric_values(arrays, thresholds, np.ones((1, arrays.labels.shape[0])))
    return {f"{prefix}/{k}": _plain(v[0]) for k, v in values.items()}


def missing_metric_notes(subsets: dict[str, int], split: str) -> list[str]:
    """One line per group of metrics that a split cannot define (its subset is empty)."""
    notes = []
    if subsets["positive_pairs"] == 0:
        notes.append(
            f"the {split} split has no positive pair with aligned evidence: exact_match, "
            "char_precision, char_recall, char_f1 and token_f1 are missing (null)"
        )
    if subsets["negative_pairs"] == 0:
        notes.append(
            f"the {split} split has no negative pair: no_answer_accuracy is missing (null)"
        )
    return notes


def _plain(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def per_criterion_counts(labels: np.ndarray, predicted: np.ndarray) -> list[dict[str, int]]:
    """Confusion counts per criterion column: tp, fp, fn, tn, support (= tp + fn)."""
    counts = []
    for c in range(labels.shape[1]):
        y, p = labels[:, c] == 1, predicted[:, c] == 1
        tp, fp, fn, tn = (int(v.sum()) for v in (y & p, ~y & p, y & ~p, ~y & ~p))
        counts.append({"tp": tp, "fp": fp, "fn": fn, "tn": tn, "support": tp + fn})
    return counts


def split_details(
    arrays: SplitArrays, thresholds: np.ndarray, metrics: dict[str, float | None], prefix: str
) -> dict[str, object]:
    """Per-criterion scores with their threshold and confusion counts, skipped AUCs, and the
    size of every subset a metric is computed on."""
    counts = per_criterion_counts(arrays.labels, predicted_labels(arrays, thresholds))
    per_criterion = {
        name: {
            **{m: metrics[f"{prefix}/criteria_matcher/{m}_{name}"] for m in PER_CRITERION_METRICS},
            "support": count["support"],
            "threshold": float(thresholds[c]),
        }
        for c, (name, count) in enumerate(zip(arrays.criteria, counts, strict=True))
    }
    return {
        "per_criterion": per_criterion,
        "confusion": dict(zip(arrays.criteria, counts, strict=True)),
        "auc_skipped": [n for n in arrays.criteria if per_criterion[n]["auc"] is None],
        "subsets": arrays.subset_sizes(),
    }
