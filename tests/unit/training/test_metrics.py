"""Metric definitions against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.training.metrics import (
    OPTIMIZABLE_METRICS,
    binary_auc,
    binary_cross_entropy,
    criteria_matcher_metrics,
    evidence_binder_metrics,
    resolve_metric_name,
    short_metric_title,
    span_scores,
)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_auc_hand_computed() -> None:
    # positives score 0.8, 0.4; negatives 0.6, 0.2: pairs (pos > neg) = 3 of 4
    assert binary_auc([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.2]) == pytest.approx(0.75)


def test_auc_ties_count_half() -> None:
    assert binary_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert binary_auc([1, 1, 0], [0.9, 0.5, 0.5]) == pytest.approx(0.75)


def test_auc_single_class_is_undefined() -> None:
    assert binary_auc([1, 1], [0.1, 0.9]) is None
    assert binary_auc([0, 0, 0], [0.1, 0.2, 0.3]) is None


def test_bce_matches_definition() -> None:
    logits = np.array([0.0, 2.0, -1.0])
    labels = np.array([1, 0, 0])
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert binary_cross_entropy(logits, labels) == pytest.approx(expected)


def test_criteria_metrics_macro_over_criteria() -> None:
    # 4 posts x 2 criteria. Criterion A: labels 1,1,0,0, predicted 1,0,1,0 -> P=.5 R=.5 F1=.5
    # Criterion B: labels 1,0,0,0, predicted 1,0,0,0 -> P=R=F1=1.
    labels = np.array([[1, 1], [1, 0], [0, 0], [0, 0]])
    probs = np.array([[0.9, 0.8], [0.3, 0.1], [0.7, 0.2], [0.1, 0.3]])
    metrics, details = criteria_matcher_metrics(labels, np.vectorize(logit)(probs), 0.5, ("A", "B"))
    assert metrics["criteria_matcher/precision"] == pytest.approx(0.75)
    assert metrics["criteria_matcher/recall"] == pytest.approx(0.75)
    assert metrics["criteria_matcher/f1"] == pytest.approx(0.75)
    assert metrics["criteria_matcher/accuracy"] == pytest.approx(6 / 8)
    assert metrics["criteria_matcher/f1_A"] == pytest.approx(0.5)
    assert metrics["criteria_matcher/f1_B"] == pytest.approx(1.0)
    # AUC A: positives .9,.3 vs negatives .7,.1 -> 3/4; B: positive .8 above all -> 1
    assert metrics["criteria_matcher/auc"] == pytest.approx((0.75 + 1.0) / 2)
    assert details["confusion"]["A"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1, "support": 2}
    assert details["auc_skipped"] == []


def test_criteria_metrics_zero_division_and_skipped_auc() -> None:
    labels = np.array([[0, 1], [0, 0]])
    probs = np.array([[0.1, 0.9], [0.2, 0.1]])
    metrics, details = criteria_matcher_metrics(labels, np.vectorize(logit)(probs), 0.5, ("A", "B"))
    assert metrics["criteria_matcher/f1_A"] == 0.0  # no positives, none predicted: 0/0 -> 0
    assert details["auc_skipped"] == ["A"]
    assert metrics["criteria_matcher/auc"] == pytest.approx(1.0)  # only B counts


def test_span_scores_overlap() -> None:
    text = "I am fine. I cannot sleep at night."
    gold = (11, 35)  # "I cannot sleep at night."
    assert span_scores(gold, [gold], text)["exact_match"] == 1.0
    partial = span_scores((11, 25), [gold], text)  # "I cannot sleep" : 14 chars of 24
    assert partial["exact_match"] == 0.0
    assert partial["char_precision"] == pytest.approx(1.0)
    assert partial["char_recall"] == pytest.approx(14 / 24)
    assert partial["char_f1"] == pytest.approx(2 * (14 / 24) / (1 + 14 / 24))


def test_span_scores_max_over_golds_and_no_answer() -> None:
    text = "abc def ghi"
    assert span_scores((4, 7), [(0, 3), (4, 7)], text)["char_f1"] == 1.0
    assert span_scores(None, [], text) == {
        "exact_match": 1.0,
        "char_precision": 1.0,
        "char_recall": 1.0,
        "char_f1": 1.0,
    }
    assert span_scores((0, 3), [], text)["char_f1"] == 0.0
    assert span_scores(None, [(0, 3)], text)["exact_match"] == 0.0


def test_exact_match_ignores_case_space_and_end_punctuation() -> None:
    text = "I  CANNOT sleep. i cannot sleep"
    assert span_scores((0, 16), [(17, 31)], text)["exact_match"] == 1.0


def test_evidence_metrics_has_answer() -> None:
    text = "abc def"
    metrics = evidence_binder_metrics([(0, 3), None, (4, 7)], [[(0, 3)], [], []], [text] * 3)
    assert metrics["evidence_binder/has_answer"] == pytest.approx(2 / 3)
    assert metrics["evidence_binder/exact_match"] == pytest.approx(2 / 3)


def test_metric_aliases_and_unknown_name() -> None:
    assert resolve_metric_name("val_f1") == "val/criteria_matcher/f1"
    assert resolve_metric_name("val/evidence_binder/char_f1") == "val/evidence_binder/char_f1"
    with pytest.raises(ConfigError) as err:
        resolve_metric_name("val_bogus")
    assert "val_f1" in err.value.message and "val_char_f1" in err.value.message
    assert all(not n.endswith("loss") for n in OPTIMIZABLE_METRICS)
    assert short_metric_title("val/criteria_matcher/f1") == "Val F1"
