"""Decision thresholds chosen on validation predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from dataaug_multi_both.training.thresholds import (
    FIXED,
    TUNED,
    TUNED_PER_CRITERION,
    DecisionThreshold,
    candidate_thresholds,
    choose_threshold,
)

CRITERIA = ("A", "B")


def test_fixed_value_is_kept() -> None:
    chosen = choose_threshold(0.3, np.zeros((2, 2)), np.full((2, 2), 0.9))
    assert chosen.policy == FIXED and chosen.per_criterion == (0.3, 0.3)
    assert chosen.source == "config"


def test_tuned_maximises_validation_macro_f1() -> None:
    # every positive scores 0.3-0.4, every negative <= 0.2: 0.5 finds nothing, the best
    # threshold separates them (midpoint between 0.2 and 0.3)
    labels = np.array([[1, 0], [0, 1], [0, 0], [1, 1]])
    probs = np.array([[0.35, 0.1], [0.2, 0.3], [0.05, 0.15], [0.4, 0.32]])
    chosen = choose_threshold(TUNED, labels, probs)
    assert chosen.policy == TUNED and chosen.source == "validation"
    assert chosen.overall == pytest.approx(0.25)
    predicted = (probs >= chosen.overall).astype(int)
    assert skm.f1_score(labels, predicted, average="macro") == 1.0


def test_tuned_is_the_best_of_all_thresholds() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 5)) < 0.3).astype(int)
    probs = np.clip(labels * 0.3 + rng.random((40, 5)) * 0.6, 0.01, 0.99)
    chosen = choose_threshold(TUNED, labels, probs)

    def macro(t: float) -> float:
        return float(
            skm.f1_score(labels, (probs >= t).astype(int), average="macro", zero_division=0)
        )

    best = max(macro(t) for t in np.linspace(0.001, 0.999, 2000))
    assert macro(chosen.overall) == pytest.approx(best)


def test_per_criterion_and_fallback_without_positives() -> None:
    # A separates at 0.6-0.7, B has no positives: B takes the global tuned value
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    probs = np.array([[0.8, 0.9], [0.6, 0.1], [0.7, 0.2], [0.1, 0.3]])
    chosen = choose_threshold(TUNED_PER_CRITERION, labels, probs)
    assert chosen.per_criterion[0] == pytest.approx(0.65)
    assert chosen.per_criterion[1] == chosen.overall
    metrics = chosen.metrics(CRITERIA, "val")
    assert set(metrics) == {
        "val/criteria_matcher/threshold",
        "val/criteria_matcher/threshold_A",
        "val/criteria_matcher/threshold_B",
    }


def test_ties_go_to_the_value_closest_to_one_half() -> None:
    # any threshold in (0.1, 0.9] separates: the candidates there tie, 0.5 is the closest
    labels = np.array([[1], [0]])
    probs = np.array([[0.9], [0.1]])
    assert choose_threshold(TUNED, labels, probs).overall == pytest.approx(0.5)


def test_candidates_are_midpoints_and_capped() -> None:
    assert candidate_thresholds(np.array([0.2, 0.4, 0.4])) == pytest.approx([0.1, 0.3, 0.7])
    many = np.random.default_rng(1).random(50_000)
    assert len(candidate_thresholds(many)) <= 1025


def test_stored_form_round_trips_and_rejects_bad_values() -> None:
    chosen = DecisionThreshold(TUNED_PER_CRITERION, 0.4, (0.3, 0.6), "validation")
    stored = chosen.as_dict(CRITERIA)
    assert DecisionThreshold.from_dict(stored, CRITERIA) == chosen
    for bad in (
        {**stored, "value": 1.5},
        {**stored, "policy": "magic"},
        {**stored, "per_criterion": {"A": 0.3}},
        {**stored, "value": True},
        {**stored, "source": "test"},  # a tuned threshold comes from validation
        {**stored, "policy": "fixed"},  # fixed: from the config, one value for all
        {**stored, "policy": "tuned"},  # tuned: one value for all
        {**stored, "value": 10**400},
        "0.5",
    ):
        with pytest.raises(ValueError):
            DecisionThreshold.from_dict(bad, CRITERIA)


def test_a_huge_stored_value_is_shown_short() -> None:
    with pytest.raises(ValueError) as err:
        DecisionThreshold.from_dict({"policy": "fixed", "value": 10**400}, CRITERIA)
    assert len(str(err.value)) < 140
