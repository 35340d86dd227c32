"""Baselines, bootstrap intervals and curve points of an evaluation report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from dataaug_multi_both.data.criteria import SYMPTOMS
from dataaug_multi_both.data.pairs import build_pairs
from dataaug_multi_both.data.tables import ANNOTATION_COLUMNS, normalise_tables
from dataaug_multi_both.metric_names import HEADLINE_METRICS, SPAN_METRICS
from dataaug_multi_both.training.baselines import baseline_arrays, positive_rates
from dataaug_multi_both.training.curves import precision_recall, reliability_bins
from dataaug_multi_both.training.metrics import SplitArrays, split_metrics
from dataaug_multi_both.training.scoring import arrays_for
from dataaug_multi_both.training.uncertainty import bootstrap_intervals, resample_weights

TEXT = "I can't sleep at all. The weather is nice. I feel worthless and guilty."


def pair_set() -> object:
    posts = pd.DataFrame(
        {"post_id": ["a", "b", "c"], "text": [TEXT, "Nothing to report here.", TEXT]}
    )
    rows = [
        ("a", "s0", "I can't sleep at all.", "SLEEP_ISSUES", 1, ""),
        ("a", "s2", "I feel worthless and guilty.", "WORTHLESSNESS", 1, ""),
        ("c", "s0", "I can't sleep at all.", "SLEEP_ISSUES", 1, ""),
        ("c", "s9", "A sentence that is nowhere in the post.", "FATIGUE", 1, ""),
    ]
    annotations = pd.DataFrame(rows, columns=list(ANNOTATION_COLUMNS))
    return build_pairs(normalise_tables(posts, annotations, "test"), 9, 0.8)


def test_baselines_on_the_same_posts() -> None:
    pairs = pair_set()
    rates = positive_rates(pairs, [0, 1])
    assert rates[SYMPTOMS.index("SLEEP_ISSUES")] == 0.5
    scored = baseline_arrays(pairs, [0, 1, 2], rates)
    half = np.full(9, 0.5)
    absent = split_metrics(scored["all_absent"], half, "t")
    for name in SPAN_METRICS:  # never predicts evidence: 0 on the positive pairs
        assert absent[f"t/evidence_binder/{name}"] == 0.0
    assert absent["t/criteria_matcher/f1"] == 0.0
    assert absent["t/evidence_binder/no_answer_accuracy"] == 1.0
    present = split_metrics(scored["all_present"], half, "t")
    assert present["t/criteria_matcher/recall"] == pytest.approx(3 / 9)  # 3 criteria have positives
    assert present["t/evidence_binder/char_recall"] == 1.0  # the whole post holds the evidence
    assert present["t/evidence_binder/char_precision"] == pytest.approx(21 / len(TEXT), abs=0.2)
    assert present["t/evidence_binder/no_answer_accuracy"] == 0.0
    # seeded: the same draws every time
    again = baseline_arrays(pairs, [0, 1, 2], rates)
    assert np.array_equal(again["train_rate"].logits, scored["train_rate"].logits)


def test_unaligned_positive_counts_for_has_answer_only() -> None:
    pairs = pair_set()
    fatigue = SYMPTOMS.index("FATIGUE")
    a = arrays_for(pairs, [2], np.zeros((1, 9)), {})
    assert a.labels[0, fatigue] == 1 and not a.has_span[0, fatigue]
    assert a.subset_sizes()["positive_pairs_unaligned"] == 1
    assert a.subset_sizes()["positive_pairs"] == 1  # SLEEP_ISSUES of post c


def synthetic_arrays(posts: int, seed: int) -> SplitArrays:
    rng = np.random.default_rng(seed)
    labels = (rng.random((posts, 4)) < 0.3).astype(int)
    probs = np.clip(labels * 0.35 + rng.random((posts, 4)) * 0.6, 0.01, 0.99)
    has_span = labels == 1
    scores = np.where(has_span[..., None], rng.random((posts, 4, len(SPAN_METRICS))), np.nan)
    return SplitArrays(
        ("A", "B", "C", "D"),
        labels,
        np.log(probs / (1 - probs)),
        rng.random((posts, 4)) < 0.3,
        scores,
        has_span,
    )


def test_bootstrap_is_seeded_and_brackets_the_value() -> None:
    a = synthetic_arrays(80, 0)
    thresholds = np.full(4, 0.5)
    first = bootstrap_intervals(a, thresholds, HEADLINE_METRICS, resamples=400)
    second = bootstrap_intervals(a, thresholds, HEADLINE_METRICS, resamples=400)
    assert first == second
    values = split_metrics(a, thresholds, "t")
    for name in HEADLINE_METRICS:
        interval = first["metrics"][name]
        assert interval["low"] <= values[f"t/{name}"] <= interval["high"], name
        assert interval["resamples"] == 400
    wider = bootstrap_intervals(synthetic_arrays(20, 0), thresholds, ["criteria_matcher/f1"])
    narrow = first["metrics"]["criteria_matcher/f1"]
    small = wider["metrics"]["criteria_matcher/f1"]
    assert small["high"] - small["low"] > narrow["high"] - narrow["low"]


def test_resamples_draw_every_post_count() -> None:
    weights = resample_weights(7, 50, seed=1)
    assert weights.shape == (50, 7) and (weights.sum(axis=1) == 7).all()


def test_precision_recall_matches_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    labels = (rng.random(60) < 0.3).astype(int)
    scores = rng.random(60).round(1)  # ties
    curve = precision_recall(labels, scores)
    assert curve.average_precision == pytest.approx(skm.average_precision_score(labels, scores))
    precision, recall, thresholds = skm.precision_recall_curve(labels, scores)
    # scikit-learn lists low to high thresholds and appends (P=1, R=0)
    assert curve.thresholds == pytest.approx(thresholds[::-1])
    assert curve.precision == pytest.approx(precision[:-1][::-1])
    assert curve.recall == pytest.approx(recall[:-1][::-1])
    assert precision_recall(np.zeros(3), np.array([0.1, 0.2, 0.3])).average_precision is None


def test_reliability_bins_hand_computed() -> None:
    labels = np.array([0, 1, 1, 1])
    probs = np.array([0.05, 0.15, 0.95, 0.85])
    bins = reliability_bins(labels, probs, bins=2)
    assert bins.count.tolist() == [2, 2]
    assert bins.mean_probability == pytest.approx([0.1, 0.9])
    assert bins.positive_rate == pytest.approx([0.5, 1.0])
    assert bins.expected_calibration_error == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)
    assert reliability_bins(labels, probs, bins=10).as_dict()["mean_probability"][5] is None


def test_baseline_scores_of_a_manifest_split() -> None:
    from dataaug_multi_both.training.baselines import baseline_scores

    split = {"train": ("a", "b"), "validation": ("c",), "test": ("b",)}
    scores = baseline_scores(pair_set(), split, "validation", ["criteria_matcher/recall"], "val")
    assert scores["all_absent"]["criteria_matcher/recall"] == 0.0
    # post c shows two criteria, SLEEP_ISSUES and FATIGUE, of the nine: recall 1 on those
    assert scores["all_present"]["criteria_matcher/recall"] == pytest.approx(2 / 9)


def test_the_loss_baseline_is_the_prevalence_predictor() -> None:
    from dataaug_multi_both.training.baselines import baseline_scores

    split = {"train": ("a", "b"), "validation": ("c",), "test": ("b",)}
    scores = baseline_scores(pair_set(), split, "validation", ["criteria_matcher/loss"], "val")
    # hard 0/1 guesses have no probabilities to score
    assert scores["all_absent"]["criteria_matcher/loss"] is None
    assert scores["all_present"]["criteria_matcher/loss"] is None
    # train rates: SLEEP_ISSUES 1/2, WORTHLESSNESS 1/2, the rest 0 (clipped to 1e-7); post c
    # shows SLEEP_ISSUES (-log 0.5) and FATIGUE (-log 1e-7), not WORTHLESSNESS (-log 0.5);
    # the six others cost -log(1 - 1e-7) each; the mean over the nine criteria
    expected = (2 * math.log(2) - math.log(1e-7) - 6 * math.log(1 - 1e-7)) / 9
    assert scores["train_rate"]["criteria_matcher/loss"] == pytest.approx(expected)
