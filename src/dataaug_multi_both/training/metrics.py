"""Metric definitions (pure functions, hand-checked in tests/unit/training/test_metrics.py).

Criteria matcher, over the pairs of a split (a post's pair predictions are its multi-label
vector, one column per criterion):
- accuracy: fraction of pairs whose predicted label (probability >= threshold) is right;
- precision / recall / f1: computed per criterion over posts, then the unweighted mean over
  criteria (macro); 0/0 counts as 0, as in scikit-learn's zero_division=0;
- auc: ROC AUC per criterion, macro mean; a criterion whose labels in the split are all
  one class has no AUC and is skipped (and reported in `auc_skipped`);
- loss: binary cross-entropy of the pair logits (max over the pair's windows).
Evidence binder, over the pairs that can be scored (all but positive pairs none of whose
evidence could be aligned):
- has_answer: accuracy of the evidence / no-evidence decision;
- exact_match, char_precision, char_recall, char_f1: the predicted span against each gold
  span of the pair, each metric the max over golds (SQuAD); exact match compares texts
  after lower-casing and collapsing whitespace, the char metrics compare character ranges.
  A correct "no evidence" scores 1 on all four; a span where there is none (or none where
  there is one) scores 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from dataaug_multi_both.errors import ConfigError

Span = tuple[int, int]

CRITERIA_METRICS = ("loss", "accuracy", "precision", "recall", "f1", "auc")
EVIDENCE_METRICS = ("exact_match", "has_answer", "char_f1", "char_precision", "char_recall")
TRAIN_METRIC_NAMES = (
    "train/criteria_matcher/loss",
    "train/criteria_matcher/accuracy",
    "train/evidence_binder/loss",
)
VAL_METRIC_NAMES = tuple(f"val/criteria_matcher/{m}" for m in CRITERIA_METRICS) + tuple(
    f"val/evidence_binder/{m}" for m in EVIDENCE_METRICS
)
SYSTEM_METRIC_NAMES = (
    "system/epoch_duration_sec",
    "system/disk_free_gb",
    "system/checkpoint_size_mb",
)
# logged only when `augmentation.*` is on: (criterion, post) training pairs changed this epoch
AUGMENTATION_METRIC_NAMES = ("train/augmentation/augmented_examples",)

METRIC_ALIASES = {
    "val_f1": "val/criteria_matcher/f1",
    "val_accuracy": "val/criteria_matcher/accuracy",
    "val_precision": "val/criteria_matcher/precision",
    "val_recall": "val/criteria_matcher/recall",
    "val_auc": "val/criteria_matcher/auc",
    "val_exact_match": "val/evidence_binder/exact_match",
    "val_char_f1": "val/evidence_binder/char_f1",
    "val_has_answer": "val/evidence_binder/has_answer",
}
# Metrics a run can be optimised for (all of them: higher is better).
OPTIMIZABLE_METRICS = tuple(n for n in VAL_METRIC_NAMES if not n.endswith("/loss"))


def resolve_metric_name(name: str) -> str:
    """Full metric name for a full name or a short alias; `ConfigError` lists the valid ones."""
    if name in OPTIMIZABLE_METRICS:
        return name
    if name in METRIC_ALIASES:
        return METRIC_ALIASES[name]
    raise ConfigError(
        f"unknown optimization metric {name!r}; valid: {', '.join(METRIC_ALIASES)} "
        f"or the full names {', '.join(OPTIMIZABLE_METRICS)}"
    )


def short_metric_title(name: str) -> str:
    """`val/criteria_matcher/f1` -> `Val F1` (column titles)."""
    alias = next((a for a, full in METRIC_ALIASES.items() if full == name), name)
    words = alias.replace("/", " ").replace("_", " ").split()
    return " ".join(w.upper() if w in ("f1", "auc") else w.capitalize() for w in words)


def binary_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean BCE of logits against 0/1 labels, computed stably."""
    x = logits.astype(np.float64)
    y = labels.astype(np.float64)
    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))


def binary_auc(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> float | None:
    """ROC AUC (Mann-Whitney U with average ranks for ties); None for a single class."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_scores = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def per_criterion_counts(labels: np.ndarray, predicted: np.ndarray) -> list[dict[str, int]]:
    """Confusion counts per criterion column: tp, fp, fn, tn, support (= tp + fn)."""
    counts = []
    for c in range(labels.shape[1]):
        y, p = labels[:, c], predicted[:, c]
        tp = int(((y == 1) & (p == 1)).sum())
        fp = int(((y == 0) & (p == 1)).sum())
        fn = int(((y == 1) & (p == 0)).sum())
        tn = int(((y == 0) & (p == 0)).sum())
        counts.append({"tp": tp, "fp": fp, "fn": fn, "tn": tn, "support": tp + fn})
    return counts


def criteria_matcher_metrics(
    labels: np.ndarray, logits: np.ndarray, threshold: float, criteria: Sequence[str]
) -> tuple[dict[str, float], dict[str, object]]:
    """labels/logits [posts, criteria] -> (metrics without prefix, details).

    Metric keys: criteria_matcher/{loss,accuracy,precision,recall,f1,auc,f1_<SYMPTOM>}.
    Details: per-criterion precision/recall/f1/support, confusion counts, auc_skipped.
    """
    probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    predicted = (probs >= threshold).astype(np.int64)
    counts = per_criterion_counts(labels, predicted)
    per_criterion: dict[str, dict[str, float]] = {}
    for name, count in zip(criteria, counts, strict=True):
        precision = _ratio(count["tp"], count["tp"] + count["fp"])
        recall = _ratio(count["tp"], count["tp"] + count["fn"])
        per_criterion[name] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": count["support"],
        }
    aucs, skipped = [], []
    for c, name in enumerate(criteria):
        auc = binary_auc(labels[:, c], probs[:, c])
        (skipped.append(name) if auc is None else aucs.append(auc))
    metrics = {
        "criteria_matcher/loss": binary_cross_entropy(logits.ravel(), labels.ravel()),
        "criteria_matcher/accuracy": float((predicted == labels).mean()),
        "criteria_matcher/precision": float(
            np.mean([v["precision"] for v in per_criterion.values()])
        ),
        "criteria_matcher/recall": float(np.mean([v["recall"] for v in per_criterion.values()])),
        "criteria_matcher/f1": float(np.mean([v["f1"] for v in per_criterion.values()])),
        "criteria_matcher/auc": float(np.mean(aucs)) if aucs else math.nan,
    }
    metrics.update({f"criteria_matcher/f1_{name}": v["f1"] for name, v in per_criterion.items()})
    details = {
        "per_criterion": per_criterion,
        "confusion": dict(zip(criteria, counts, strict=True)),
        "auc_skipped": skipped,
        "threshold": threshold,
    }
    return metrics, details


_SPACES = re.compile(r"\s+")


def normalise_answer(text: str) -> str:
    return _SPACES.sub(" ", text.lower()).strip().strip(".,!?;:\"'")


def span_scores(predicted: Span | None, golds: Sequence[Span], text: str) -> dict[str, float]:
    """exact_match and char_{precision,recall,f1} of one prediction (max over golds)."""
    if not golds or predicted is None:
        same = float(not golds and predicted is None)
        return {"exact_match": same, "char_precision": same, "char_recall": same, "char_f1": same}
    ps, pe = predicted
    best = {"exact_match": 0.0, "char_precision": 0.0, "char_recall": 0.0, "char_f1": 0.0}
    for gs, ge in golds:
        overlap = max(0, min(pe, ge) - max(ps, gs))
        precision = _ratio(overlap, pe - ps)
        recall = _ratio(overlap, ge - gs)
        scores = {
            "exact_match": float(normalise_answer(text[ps:pe]) == normalise_answer(text[gs:ge])),
            "char_precision": precision,
            "char_recall": recall,
            "char_f1": _ratio(2 * precision * recall, precision + recall),
        }
        best = {k: max(best[k], scores[k]) for k in best}
    return best


def evidence_binder_metrics(
    predictions: Sequence[Span | None], golds: Sequence[Sequence[Span]], texts: Sequence[str]
) -> dict[str, float]:
    """Mean of `span_scores` over the scored pairs, plus has_answer; keys evidence_binder/*."""
    if not predictions:
        return {f"evidence_binder/{m}": math.nan for m in EVIDENCE_METRICS}
    rows = [span_scores(p, g, t) for p, g, t in zip(predictions, golds, texts, strict=True)]
    has_answer = [
        float((p is not None) == bool(g)) for p, g in zip(predictions, golds, strict=True)
    ]
    metrics = {f"evidence_binder/{k}": float(np.mean([r[k] for r in rows])) for k in rows[0]}
    metrics["evidence_binder/has_answer"] = float(np.mean(has_answer))
    return metrics
