"""The study's rules about its trials, on hand-made trial lists and on real Optuna trials."""

from __future__ import annotations

import math

import optuna
import pytest

from dataaug_multi_both.hpo.runner import REQUEUED_FROM, requeued_from
from dataaug_multi_both.hpo.trials import (
    TrialView,
    best_trial,
    failed_trials,
    finished_count,
    ranked_complete,
    state_counts,
    study_retention_plan,
    trial_views,
)

VIEWS = [
    TrialView(0, "COMPLETE", 0.5),
    TrialView(1, "PRUNED", None),
    TrialView(2, "COMPLETE", 0.9),
    TrialView(3, "FAIL", None),
    TrialView(4, "RUNNING", None),
    TrialView(5, "COMPLETE", 0.9),  # tie: the earlier trial ranks first
    TrialView(6, "COMPLETE", math.inf),  # no result: never best
    TrialView(7, "COMPLETE", math.nan),
]


def test_best_and_ranking_skip_non_finite_values_and_break_ties_by_number() -> None:
    assert [t.number for t in ranked_complete(VIEWS)] == [2, 5, 0]
    assert best_trial(VIEWS).number == 2
    assert best_trial([TrialView(0, "PRUNED", None)]) is None


def test_counts() -> None:
    counts = state_counts(VIEWS)
    assert counts == {"COMPLETE": 5, "PRUNED": 1, "FAIL": 1, "RUNNING": 1}
    assert finished_count(counts) == 6


def test_study_retention_plan_keeps_only_top_k_finished() -> None:
    plan = study_retention_plan(VIEWS, 1)
    assert plan == {
        0: "release",
        1: "release",
        2: "keep_best",
        3: "release",
        5: "release",
        6: "release",
        7: "release",
    }
    assert study_retention_plan(VIEWS, 2)[5] == "keep_best"
    assert 4 not in study_retention_plan(VIEWS, 3)


def test_failures_that_count() -> None:
    views = [
        TrialView(0, "FAIL", None),
        TrialView(1, "FAIL", None, user_attrs={"surplus": True}),
        TrialView(2, "FAIL", None, user_attrs={"interrupted": True}),
        TrialView(3, "FAIL", None),  # stale, re-run by trial 4
        TrialView(4, "COMPLETE", 0.1, retried_from=3),
    ]
    assert [t.number for t in failed_trials(views)] == [0]


def test_views_of_real_optuna_trials() -> None:
    study = optuna.create_study(direction="maximize")
    for value in (0.2, 0.7):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        study.tell(trial, value)
    running = study.ask()
    views = trial_views(study.get_trials(deepcopy=False))
    assert [(v.number, v.state) for v in views] == [
        (0, "COMPLETE"),
        (1, "COMPLETE"),
        (2, "RUNNING"),
    ]
    assert best_trial(study.get_trials()).number == 1 == best_trial(views).number
    ending = TrialView(running.number, "PRUNED", None)
    assert trial_views(study.get_trials(), ending)[2].state == "PRUNED"
    assert "x" in views[0].params


@pytest.mark.parametrize("value", [None, math.nan])
def test_a_complete_trial_without_a_value_is_no_result(value: float | None) -> None:
    assert best_trial([TrialView(0, "COMPLETE", value)]) is None


@pytest.mark.parametrize("planted", [[1], {"n": 1}, True, "1", 1.0])
def test_a_planted_requeued_from_names_no_trial(planted: object) -> None:
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, value=0.5, user_attrs={REQUEUED_FROM: planted}
    )
    assert requeued_from(trial) is None  # an unhashable list was a traceback; True read as 1
    trial.user_attrs[REQUEUED_FROM] = 3
    assert requeued_from(trial) == 3
