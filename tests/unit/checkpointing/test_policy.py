"""Retention decisions (pure), hand-checked."""

from __future__ import annotations

import math

from dataaug_multi_both.checkpointing.policy import (
    RESUME,
    WEIGHTS_ONLY,
    CheckpointFacts,
    decide,
    is_new_best,
    over_budget,
    should_save,
)


def facts(*metrics: float | None, size: int = 10) -> list[CheckpointFacts]:
    return [CheckpointFacts(e, m, size, RESUME) for e, m in enumerate(metrics, start=1)]


def test_keep_last_one_and_best_one() -> None:
    d = decide(facts(0.5, 0.9, 0.7, 0.6), keep_last_n=1, keep_best_k=1)
    assert d.keep_resume == {4} and d.keep_weights_only == {2} and d.delete == {1, 3}


def test_best_that_is_also_recent_stays_resume() -> None:
    d = decide(facts(0.5, 0.9), keep_last_n=1, keep_best_k=1)
    assert d.keep_resume == {2} and d.keep_weights_only == set() and d.delete == {1}


def test_ties_keep_the_earlier_epoch_and_nan_is_worst() -> None:
    d = decide(facts(0.8, 0.8, math.nan, 0.1), keep_last_n=1, keep_best_k=1)
    assert d.keep_weights_only == {1} and d.delete == {2, 3}
    d = decide(facts(None, 0.1, math.nan), keep_last_n=1, keep_best_k=2)
    assert d.keep_weights_only == {1, 2}  # 0.1 first, then None before NaN by epoch


def test_keep_last_n_and_best_k_combined() -> None:
    d = decide(facts(0.9, 0.1, 0.8, 0.2, 0.3), keep_last_n=2, keep_best_k=2)
    assert d.keep_resume == {4, 5} and d.keep_weights_only == {1, 3} and d.delete == {2}


def test_keep_best_zero() -> None:
    d = decide(facts(0.9, 0.1), keep_last_n=1, keep_best_k=0)
    assert d.keep_resume == {2} and d.delete == {1}


def test_size_cap_deletes_worst_first_sparing_best_and_latest() -> None:
    items = [
        CheckpointFacts(1, 0.9, 10, WEIGHTS_ONLY),
        CheckpointFacts(2, 0.5, 10, WEIGHTS_ONLY),
        CheckpointFacts(3, 0.7, 10, WEIGHTS_ONLY),
        CheckpointFacts(4, 0.1, 30, RESUME),
    ]
    doomed, over = over_budget(items, 45)
    assert doomed == {2, 3} and not over  # 60 -> 50 (drop 0.5) -> 40 (drop 0.7)
    doomed, over = over_budget(items, 25)
    assert doomed == {2, 3} and over  # best (10) + latest (30) alone exceed 25


def test_should_save_interval_best_and_final() -> None:
    assert should_save(1, None, False, False, 3)
    assert not should_save(2, 1, False, False, 3)
    assert should_save(4, 1, False, False, 3)
    assert should_save(2, 1, True, False, 3)
    assert should_save(3, 2, False, True, 3)


def test_is_new_best_strict() -> None:
    assert is_new_best(0.5, [])
    assert is_new_best(0.6, [0.5, None])
    assert not is_new_best(0.5, [0.5])
    assert not is_new_best(math.nan, [])


def test_fits_on_disk() -> None:
    from dataaug_multi_both.checkpointing.policy import fits_on_disk

    gb = 10**9
    assert fits_on_disk(free=50 * gb, total=100 * gb, needed=10 * gb, threshold_percent=10)
    assert not fits_on_disk(free=15 * gb, total=100 * gb, needed=10 * gb, threshold_percent=10)
    assert fits_on_disk(free=20 * gb, total=100 * gb, needed=10 * gb, threshold_percent=10)
    assert not fits_on_disk(free=5, total=100, needed=5, threshold_percent=0)  # nothing left
    assert not fits_on_disk(free=0, total=0, needed=0, threshold_percent=0)
