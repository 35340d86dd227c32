"""Metric definitions against hand-computed values and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.metric_names import (
    OPTIMIZABLE_METRICS,
    SPAN_METRICS,
    metric_sign,
    objective_label,
    objective_of,
    resolve_metric_name,
    short_metric_title,
)
from dataaug_multi_both.training.metrics import (
    SplitArrays,
    binary_auc,
    metric_values,
    missing_metric_notes,
    split_details,
    split_metrics,
)
from dataaug_multi_both.training.span_metrics import normalise_answer, span_scores, token_f1


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def arrays(
    labels: np.ndarray,
    probs: np.ndarray,
    evidence_predicted: np.ndarray | None = None,
    span_scores_: np.ndarray | None = None,
    has_span: np.ndarray | None = None,
) -> SplitArrays:
    labels = np.asarray(labels)
    shape = labels.shape
    return SplitArrays(
        tuple(f"C{c}" for c in range(shape[1])),
        labels,
        logit(np.asarray(probs, dtype=np.float64)),
        np.zeros(shape, bool) if evidence_predicted is None else np.asarray(evidence_predicted),
        (
            np.full((*shape, len(SPAN_METRICS)), np.nan)
            if span_scores_ is None
            else np.asarray(span_scores_)
        ),
        np.zeros(shape, bool) if has_span is None else np.asarray(has_span),
    )


# ------------------------------------------------------------------ criteria matcher
def test_macro_micro_samples_hand_computed() -> None:
    # 4 posts x 2 criteria. A: labels 1,1,0,0 predicted 1,0,1,0 -> P=R=F1=.5
    # B: labels 1,0,0,0 predicted 1,0,0,0 -> P=R=F1=1
    labels = np.array([[1, 1], [1, 0], [0, 0], [0, 0]])
    probs = np.array([[0.9, 0.8], [0.3, 0.1], [0.7, 0.2], [0.1, 0.3]])
    m = split_metrics(arrays(labels, probs), np.array([0.5, 0.5]), "val")
    assert m["val/criteria_matcher/f1"] == pytest.approx(0.75)
    assert m["val/criteria_matcher/precision"] == pytest.approx(0.75)
    assert m["val/criteria_matcher/accuracy"] == pytest.approx(6 / 8)
    # micro: tp 2, fp 1, fn 1 -> 4 / 6
    assert m["val/criteria_matcher/micro_f1"] == pytest.approx(4 / 6)
    # samples: post 0 {A,B} vs {A,B} = 1; post 1 {A} vs {} = 0; post 2 {} vs {A} = 0;
    # post 3 {} vs {} = 0 (zero_division 0) -> 1/4
    assert m["val/criteria_matcher/samples_f1"] == pytest.approx(0.25)
    assert m["val/criteria_matcher/f1_C0"] == pytest.approx(0.5)
    assert m["val/criteria_matcher/recall_C1"] == pytest.approx(1.0)
    # AUC A: positives .9,.3 vs negatives .7,.1 -> 3/4; B: positive .8 above all -> 1
    assert m["val/criteria_matcher/auc_C0"] == pytest.approx(0.75)
    assert m["val/criteria_matcher/auc"] == pytest.approx((0.75 + 1.0) / 2)


@pytest.mark.parametrize("seed", range(8))
def test_criteria_metrics_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # two or more columns: scikit-learn reads one column as a binary (not multi-label) target
    posts, criteria = rng.integers(5, 60), rng.integers(2, 10)
    labels = (rng.random((posts, criteria)) < rng.uniform(0.05, 0.6)).astype(int)
    probs = rng.uniform(0.01, 0.99, (posts, criteria)).round(2)  # rounding makes ties
    thresholds = rng.uniform(0.2, 0.8, criteria)
    m = split_metrics(arrays(labels, probs), thresholds, "t")
    predicted = (probs >= thresholds).astype(int)
    for average in ("macro", "micro", "samples"):
        key = "f1" if average == "macro" else f"{average}_f1"
        expected = skm.f1_score(labels, predicted, average=average, zero_division=0)
        assert m[f"t/criteria_matcher/{key}"] == pytest.approx(expected), average
    assert m["t/criteria_matcher/precision"] == pytest.approx(
        skm.precision_score(labels, predicted, average="macro", zero_division=0)
    )
    assert m["t/criteria_matcher/recall"] == pytest.approx(
        skm.recall_score(labels, predicted, average="macro", zero_division=0)
    )
    assert m["t/criteria_matcher/accuracy"] == pytest.approx(
        skm.accuracy_score(labels.ravel(), predicted.ravel())
    )
    assert m["t/criteria_matcher/loss"] == pytest.approx(
        skm.log_loss(labels.ravel(), probs.ravel(), labels=[0, 1])
    )
    aucs = []
    for c in range(criteria):
        f1 = skm.f1_score(labels[:, c], predicted[:, c], zero_division=0)
        assert m[f"t/criteria_matcher/f1_C{c}"] == pytest.approx(f1)
        if len(set(labels[:, c])) == 2:
            aucs.append(skm.roc_auc_score(labels[:, c], probs[:, c]))
            assert m[f"t/criteria_matcher/auc_C{c}"] == pytest.approx(aucs[-1])
        else:
            assert m[f"t/criteria_matcher/auc_C{c}"] is None
    assert m["t/criteria_matcher/auc"] == (pytest.approx(np.mean(aucs)) if aucs else None)


def test_edge_cases_match_scikit_learn() -> None:
    # criterion 0 has no positives; the predictions are all negative
    labels = np.array([[0, 1, 0], [0, 0, 1], [0, 1, 0]])
    probs = np.full(labels.shape, 0.1)
    m = split_metrics(arrays(labels, probs), np.full(3, 0.5), "t")
    predicted = np.zeros_like(labels)
    for average in ("macro", "micro", "samples"):
        key = "f1" if average == "macro" else f"{average}_f1"
        assert m[f"t/criteria_matcher/{key}"] == skm.f1_score(
            labels, predicted, average=average, zero_division=0
        )
    assert m["t/criteria_matcher/f1"] == 0.0
    assert m["t/criteria_matcher/auc_C0"] is None  # one class: undefined, not 0 or 1
    assert m["t/criteria_matcher/auc"] == pytest.approx(0.5)  # constant scores tie


def test_auc_ties_and_single_class() -> None:
    assert binary_auc(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert binary_auc(np.array([1, 1, 0]), np.array([0.9, 0.5, 0.5])) == pytest.approx(0.75)
    assert binary_auc(np.array([1, 1]), np.array([0.1, 0.9])) is None


def test_weights_equal_a_physical_resample() -> None:
    """The bootstrap path (post weights) gives exactly the metrics of the resampled split."""
    rng = np.random.default_rng(3)
    labels = (rng.random((12, 4)) < 0.3).astype(int)
    probs = rng.uniform(0.05, 0.95, (12, 4))
    has_span = (labels == 1) & (rng.random((12, 4)) < 0.8)
    scores = np.where(has_span[..., None], rng.random((12, 4, len(SPAN_METRICS))), np.nan)
    evidence = rng.random((12, 4)) < 0.4
    base = arrays(labels, probs, evidence, scores, has_span)
    counts = rng.multinomial(12, np.full(12, 1 / 12))
    rows = np.repeat(np.arange(12), counts)
    copy = arrays(labels[rows], probs[rows], evidence[rows], scores[rows], has_span[rows])
    thresholds = np.full(4, 0.5)
    weighted = metric_values(base, thresholds, counts[None, :])
    direct = split_metrics(copy, thresholds, "x")
    for name, value in weighted.items():
        expected = direct[f"x/{name}"]
        if expected is None:
            assert math.isnan(value[0]), name
        else:
            assert value[0] == pytest.approx(expected), name


# ------------------------------------------------------------------ evidence binder
def test_char_scores_come_from_one_gold() -> None:
    # the case: prediction (0,10), golds (0,5) and (0,20): both golds give F1 2/3;
    # P and R must come from the same one (the first), never P = R = 1 with F1 = 2/3
    scores = span_scores((0, 10), [(0, 5), (0, 20)], "x" * 20)
    assert (scores["char_precision"], scores["char_recall"]) == pytest.approx((0.5, 1.0))
    assert scores["char_f1"] == pytest.approx(2 / 3)
    p, r = scores["char_precision"], scores["char_recall"]
    assert scores["char_f1"] == pytest.approx(2 * p * r / (p + r))


def test_span_scores_partial_and_best_gold() -> None:
    text = "I am fine. I cannot sleep at night."
    gold = (11, 35)  # "I cannot sleep at night."
    partial = span_scores((11, 25), [gold], text)  # "I cannot sleep": 14 chars of 24
    assert partial["exact_match"] == 0.0
    assert partial["char_precision"] == pytest.approx(1.0)
    assert partial["char_recall"] == pytest.approx(14 / 24)
    # tokens: i cannot sleep (3) vs i cannot sleep at night (5): P 1, R 3/5
    assert partial["token_f1"] == pytest.approx(2 * 0.6 / 1.6)
    assert span_scores((4, 7), [(0, 3), (4, 7)], "abc def ghi")["char_f1"] == 1.0
    assert span_scores(None, [(0, 3)], "abc") == dict.fromkeys(SPAN_METRICS, 0.0)
    with pytest.raises(ValueError):
        span_scores((0, 3), [], "abc")


def test_squad_normalisation_and_token_f1() -> None:
    assert normalise_answer("The  Cat, sat!") == "cat sat"
    assert normalise_answer("I\u2019m a mess.") == "im mess"
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(2 * 1 * (2 / 3) / (5 / 3))
    assert token_f1("!!", "the") == 1.0  # both normalise to nothing
    text = "I  CANNOT sleep. i cannot sleep"
    assert span_scores((0, 16), [(17, 31)], text)["exact_match"] == 1.0


def test_evidence_subsets_hasans_noans_and_all_pairs() -> None:
    # 2 posts x 2 criteria: (0,0) positive with span, predicted, scores 1 / .5;
    # (0,1) negative, span predicted (wrong); (1,0) positive unaligned, nothing predicted;
    # (1,1) negative, nothing predicted (right)
    labels = np.array([[1, 0], [1, 0]])
    has_span = np.array([[True, False], [False, False]])
    evidence = np.array([[True, True], [False, False]])
    scores = np.full((2, 2, len(SPAN_METRICS)), np.nan)
    scores[0, 0] = [1.0, 0.5, 0.5, 0.5, 0.5]
    m = split_metrics(
        arrays(labels, np.full((2, 2), 0.5), evidence, scores, has_span), [0.5] * 2, "v"
    )
    assert m["v/evidence_binder/exact_match"] == 1.0  # one HasAns pair
    assert m["v/evidence_binder/char_f1"] == 0.5
    assert m["v/evidence_binder/no_answer_accuracy"] == 0.5  # NoAns: one of two right
    assert m["v/evidence_binder/has_answer"] == 0.5  # (0,0) and (1,1) right of 4


def test_missing_subsets_are_none_with_a_note() -> None:
    labels = np.zeros((3, 2), dtype=int)
    a = arrays(labels, np.full((3, 2), 0.2))
    m = split_metrics(a, np.full(2, 0.5), "v")
    for name in SPAN_METRICS:
        assert m[f"v/evidence_binder/{name}"] is None
    assert m["v/evidence_binder/no_answer_accuracy"] == 1.0
    assert m["v/criteria_matcher/auc"] is None
    notes = missing_metric_notes(a.subset_sizes(), "validation")
    assert len(notes) == 1 and "no positive pair" in notes[0]


def test_details_per_criterion_and_subsets() -> None:
    labels = np.array([[1, 0], [0, 0]])
    a = arrays(labels, np.array([[0.9, 0.6], [0.2, 0.1]]))
    thresholds = np.array([0.5, 0.7])
    m = split_metrics(a, thresholds, "t")
    d = split_details(a, thresholds, m, "t")
    assert d["confusion"]["C0"] == {"tp": 1, "fp": 0, "fn": 0, "tn": 1, "support": 1}
    assert d["confusion"]["C1"]["fp"] == 0  # 0.6 < its own threshold 0.7
    assert d["per_criterion"]["C1"]["threshold"] == 0.7
    assert d["auc_skipped"] == ["C1"]
    assert d["subsets"] == {
        "posts": 2,
        "pairs": 4,
        "positive_pairs": 0,
        "positive_pairs_unaligned": 1,
        "negative_pairs": 3,
    }


def test_metric_aliases_and_unknown_name() -> None:
    assert resolve_metric_name("val_f1") == "val/criteria_matcher/f1"
    assert resolve_metric_name("val_micro_f1") == "val/criteria_matcher/micro_f1"
    assert resolve_metric_name("val/evidence_binder/token_f1") == "val/evidence_binder/token_f1"
    with pytest.raises(ConfigError) as err:
        resolve_metric_name("val_bogus")
    assert "val_f1" in err.value.message and "val_char_f1" in err.value.message
    # a loss can be the objective: minimised, i.e. maximised as its negative
    assert resolve_metric_name("val_loss") == "val/criteria_matcher/loss"
    assert "val/criteria_matcher/loss" in OPTIMIZABLE_METRICS
    assert metric_sign("val/criteria_matcher/loss") == -1.0 and metric_sign("val_f1") == 1.0
    assert objective_of("val/criteria_matcher/loss", 0.25) == -0.25
    assert objective_label("val/criteria_matcher/loss") == "-val/criteria_matcher/loss"
    assert short_metric_title("val/criteria_matcher/f1") == "Val F1"


def test_an_empty_split_has_every_metric_missing() -> None:
    empty = arrays(np.zeros((0, 3), dtype=int), np.zeros((0, 3)))
    assert all(v is None for v in split_metrics(empty, np.full(3, 0.5), "t").values())
