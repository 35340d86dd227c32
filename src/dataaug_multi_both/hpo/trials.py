"""The study's rules about its trials (pure): which trial is best, how many are in each
state, which failures count, which trials keep checkpoints.

Every function takes Optuna's frozen trials or `TrialView`s (anything with `number`,
`state` (a name or an enum with `.name`), `value`, `user_attrs`), so the runner, the
report, `evaluate_study` and `cleanup` decide the same way, and the tests use hand-made
lists.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dataaug_multi_both.checkpointing.study_retention import KEEP_BEST, RELEASE

FINISHED = ("COMPLETE", "PRUNED")


@dataclass(frozen=True)
class TrialView:
    number: int
    state: str  # Optuna state name
    value: float | None
    params: Mapping[str, Any] = field(default_factory=dict)
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    retried_from: int | None = None  # the stale trial this one re-runs (heartbeat retry)


def state_of(trial: Any) -> str:
    state = trial.state
    return state if isinstance(state, str) else state.name


def retried_from(trial: Any) -> int | None:
    """The stale trial a trial re-runs (Optuna's RetryHeartbeatStaleTrialCallback records
    it as the system attribute `failed_trial`)."""
    if isinstance(trial, TrialView):
        return trial.retried_from
    retried = (getattr(trial, "system_attrs", None) or {}).get("failed_trial")
    return retried if isinstance(retried, int) else None


def view_of(trial: Any) -> TrialView:
    """A frozen Optuna trial as a plain view."""
    if isinstance(trial, TrialView):
        return trial
    return TrialView(
        trial.number,
        state_of(trial),
        trial.value,
        dict(trial.params),
        dict(trial.user_attrs),
        retried_from(trial),
    )


def trial_views(trials: Iterable[Any], ending: TrialView | None = None) -> list[TrialView]:
    """The trials as views in number order; `ending` (a trial whose end Optuna has not
    recorded yet) replaces its RUNNING entry."""
    views = {t.number: view_of(t) for t in trials}
    if ending is not None:
        views[ending.number] = ending
    return [views[n] for n in sorted(views)]


def is_complete(trial: Any) -> bool:
    """COMPLETE with a finite value (a NaN or infinite value is no result)."""
    return state_of(trial) == "COMPLETE" and trial.value is not None and math.isfinite(trial.value)


def ranked_complete(trials: Iterable[Any]) -> list[Any]:
    """Complete trials, best first (higher value; the earlier trial on ties)."""
    return sorted((t for t in trials if is_complete(t)), key=lambda t: (-t.value, t.number))


def best_trial(trials: Iterable[Any]) -> Any | None:
    ranked = ranked_complete(trials)
    return ranked[0] if ranked else None


def state_counts(trials: Iterable[Any]) -> dict[str, int]:
    return dict(Counter(state_of(t) for t in trials))


def finished_count(counts: Mapping[str, int]) -> int:
    return sum(counts.get(s, 0) for s in FINISHED)


def failed_trials(trials: Iterable[Any]) -> list[Any]:
    """FAIL trials that count as failures: not a surplus claim, not interrupted (those are
    re-queued), not a stale trial that another trial re-ran."""
    listed = list(trials)
    retried = {retried_from(t) for t in listed} - {None}
    return [
        t
        for t in listed
        if state_of(t) == "FAIL"
        and not t.user_attrs.get("surplus")
        and not t.user_attrs.get("interrupted")
        and t.number not in retried
    ]


def study_retention_plan(trials: Iterable[Any], keep_top_k: int) -> dict[int, str]:
    """Finished trials in the top K keep their best checkpoint; every other finished trial
    releases all. Running trials are not in the plan."""
    listed = list(trials)
    top = {t.number for t in ranked_complete(listed)[:keep_top_k]}
    return {
        t.number: KEEP_BEST if t.number in top else RELEASE
        for t in listed
        if state_of(t) in ("COMPLETE", "PRUNED", "FAIL")
    }
