"""Decision thresholds of the criteria matcher, chosen on validation predictions (pure).

`trainer.decision_threshold` is a number (fixed), `tuned` (one threshold for all criteria,
the one that maximises validation macro-F1) or `tuned_per_criterion` (each criterion's own
F1-maximising threshold; a criterion without validation positives takes the global tuned
value). Tuning happens at every evaluation on the validation split only; the chosen values
travel with the checkpoint, and the test split is scored with them, never tuned on.

Candidates are the midpoints between consecutive distinct validation probabilities (plus
one below the lowest and one above the highest), so every distinct decision is reachable
and the chosen value sits between two observed scores rather than on one. Ties between
equally good thresholds go to the one closest to 0.5, then to the lower one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dataaug_multi_both.config.schema import THRESHOLD_POLICIES

FIXED = "fixed"
TUNED = "tuned"
TUNED_PER_CRITERION = "tuned_per_criterion"
TUNED_POLICIES = THRESHOLD_POLICIES  # the schema's names: tuned, tuned_per_criterion
SOURCES = {FIXED: "config", TUNED: "validation", TUNED_PER_CRITERION: "validation"}
MAX_CANDIDATES = 1024  # more distinct probabilities than this: their quantiles


@dataclass(frozen=True)
class DecisionThreshold:
    policy: str  # FIXED | TUNED | TUNED_PER_CRITERION
    overall: float  # the fixed value, or the global tuned value
    per_criterion: tuple[float, ...]  # the value applied to each criterion, model order
    source: str  # "config" (fixed) or "validation" (tuned)

    def values(self) -> np.ndarray:
        return np.asarray(self.per_criterion, dtype=np.float64)

    def as_dict(self, criteria: tuple[str, ...]) -> dict[str, Any]:
        """Plain types: stored in checkpoints (weights_only-loadable), manifests, reports."""
        return {
            "policy": self.policy,
            "source": self.source,
            "value": self.overall,
            "per_criterion": dict(zip(criteria, self.per_criterion, strict=True)),
        }

    @classmethod
    def from_dict(cls, data: Any, criteria: tuple[str, ...]) -> DecisionThreshold:
        """Read a stored threshold back; ValueError if it is not a well-formed one."""
        if not isinstance(data, dict):
            raise ValueError("a stored decision threshold must be a mapping")
        per = data.get("per_criterion")
        values = [per.get(c) if isinstance(per, dict) else None for c in criteria]
        overall, *checked = (_probability(v) for v in [data.get("value"), *values])
        policy, source = data.get("policy"), data.get("source")
        if policy not in (FIXED, *TUNED_POLICIES):
            raise ValueError(f"unknown threshold policy {_short(policy)}")
        if source != SOURCES[policy]:
            raise ValueError(f"a {policy} threshold must come from {SOURCES[policy]}")
        if policy != TUNED_PER_CRITERION and any(v != overall for v in checked):
            raise ValueError(f"a {policy} threshold has one value for every criterion")
        return cls(policy, overall, tuple(checked), source)

    def uniform_value(self) -> float | None:
        """The one value applied to every criterion, or None when they differ."""
        return self.overall if len(set(self.per_criterion)) <= 1 else None

    def metrics(self, criteria: tuple[str, ...], prefix: str) -> dict[str, float]:
        """What goes to train.jsonl and MLflow with the epoch's metrics."""
        values = {f"{prefix}/criteria_matcher/threshold": self.overall}
        if self.policy == TUNED_PER_CRITERION:
            values.update(
                {
                    f"{prefix}/criteria_matcher/threshold_{name}": value
                    for name, value in zip(criteria, self.per_criterion, strict=True)
                }
            )
        return values


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(
            f"a threshold must be a number strictly between 0 and 1, got {_short(value)}"
        )
    return float(value)


def _short(value: Any) -> str:
    """A value from a file, shown in a message without flooding it."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fixed_threshold(value: float, num_criteria: int) -> DecisionThreshold:
    return DecisionThreshold(FIXED, float(value), (float(value),) * num_criteria, "config")


def choose_threshold(
    setting: float | str, labels: np.ndarray, probabilities: np.ndarray
) -> DecisionThreshold:
    """The threshold a `trainer.decision_threshold` setting gives on validation labels and
    probabilities [posts, criteria]."""
    num_criteria = labels.shape[1]
    if not isinstance(setting, str):
        return fixed_threshold(setting, num_criteria)
    overall = _best_threshold(labels, probabilities, _macro_f1_at)
    if setting == TUNED:
        return DecisionThreshold(TUNED, overall, (overall,) * num_criteria, "validation")
    per = tuple(
        (
            _best_threshold(labels[:, [c]], probabilities[:, [c]], _macro_f1_at)
            if labels[:, c].any()
            else overall
        )
        for c in range(num_criteria)
    )
    return DecisionThreshold(TUNED_PER_CRITERION, overall, per, "validation")


def candidate_thresholds(probabilities: np.ndarray) -> np.ndarray:
    distinct = np.unique(probabilities)
    if len(distinct) > MAX_CANDIDATES:
        distinct = np.unique(np.quantile(distinct, np.linspace(0, 1, MAX_CANDIDATES)))
    edges = np.concatenate(([0.0], distinct, [1.0]))
    middles = (edges[:-1] + edges[1:]) / 2
    return middles[(middles > 0) & (middles < 1)]


def _macro_f1_at(labels: np.ndarray, probabilities: np.ndarray, candidates: np.ndarray) -> Any:
    """Macro-F1 over the columns at each candidate threshold -> [K]."""
    y = labels[None, :, :] == 1
    p = probabilities[None, :, :] >= candidates[:, None, None]  # [K, P, C]
    tp = (y & p).sum(axis=1)
    den = 2 * tp + (~y & p).sum(axis=1) + (y & ~p).sum(axis=1)
    f1 = np.divide(2 * tp, den, out=np.zeros(den.shape), where=den > 0)
    return f1.mean(axis=1)


def _best_threshold(labels: np.ndarray, probabilities: np.ndarray, score: Any) -> float:
    candidates = candidate_thresholds(probabilities)
    if len(candidates) == 0:
        return 0.5
    values = np.concatenate(  # in blocks: memory stays [block, posts, criteria]
        [
            score(labels, probabilities, candidates[i : i + 64])
            for i in range(0, len(candidates), 64)
        ]
    )
    best = np.flatnonzero(values >= values.max() - 1e-12)
    ranked = sorted(best, key=lambda k: (abs(candidates[k] - 0.5), candidates[k]))
    return float(candidates[ranked[0]])
