"""Points of the evaluation plots (pure): precision-recall curves and reliability bins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PrecisionRecall:
    precision: np.ndarray  # one point per distinct score, highest threshold first
    recall: np.ndarray
    thresholds: np.ndarray
    average_precision: float | None  # None without positives


def precision_recall(labels: np.ndarray, scores: np.ndarray) -> PrecisionRecall:
    """Precision and recall of `score >= t` for every distinct score t (high to low), and
    average precision, sum over those points of (recall step) x precision (as scikit-learn)."""
    y = np.asarray(labels) == 1
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_group = np.r_[s[1:] != s[:-1], True] if len(s) else np.empty(0, dtype=bool)
    tp = np.cumsum(y)[last_of_group].astype(np.float64)
    predicted = (np.flatnonzero(last_of_group) + 1).astype(np.float64)
    positives = float(y.sum())
    precision = tp / predicted if len(predicted) else np.empty(0)
    recall = tp / positives if positives else np.zeros(len(tp))
    ap = None
    if positives:
        steps = np.diff(np.r_[0.0, recall])
        ap = float((steps * precision).sum())
    return PrecisionRecall(precision, recall, s[last_of_group], ap)


@dataclass(frozen=True)
class ReliabilityBins:
    edges: np.ndarray  # [bins + 1] in probability
    count: np.ndarray  # pairs per bin
    mean_probability: np.ndarray  # NaN for an empty bin
    positive_rate: np.ndarray  # NaN for an empty bin
    expected_calibration_error: float | None

    def as_dict(self) -> dict[str, object]:
        def plain(values: np.ndarray) -> list[float | None]:
            return [None if np.isnan(v) else round(float(v), 6) for v in values]

        return {
            "edges": self.edges.round(6).tolist(),
            "count": self.count.tolist(),
            "mean_probability": plain(self.mean_probability),
            "positive_rate": plain(self.positive_rate),
            "expected_calibration_error": self.expected_calibration_error,
        }


def reliability_bins(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> ReliabilityBins:
    """Equal-width probability bins: mean predicted probability against the observed
    positive rate, and the expected calibration error (count-weighted mean gap)."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / count
        rate = np.bincount(index, weights=y, minlength=bins) / count
    gaps = np.abs(mean_p - rate)
    ece = float(np.nansum(gaps * count) / count.sum()) if count.sum() else None
    return ReliabilityBins(edges, count, mean_p, rate, ece)
