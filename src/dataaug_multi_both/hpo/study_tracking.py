"""The study's MLflow parent run (the trials are its children)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataaug_multi_both.errors import DataAugError
from dataaug_multi_both.hpo.config import HpoConfig
from dataaug_multi_both.hpo.study import StudyRecord
from dataaug_multi_both.layout import StudyPaths, study_name


def start_parent_run(
    hpo: HpoConfig,
    study: Any,
    record: StudyRecord,
    experiments_dir: Path,
    retry: Callable[[Callable[[], Any], str], Any],
) -> Any:
    """The study's parent run, started or continued (its id is kept in the study database and
    study.json, so every worker and every resume logs to the same one); None without MLflow."""
    tracking = hpo.train.tracking
    if tracking.backend != "mlflow":
        return None
    from dataaug_multi_both.tracking.mlflow_logger import RunTracker

    tracker = RunTracker(tracking, experiments_dir)
    existing = study.user_attrs.get("mlflow_parent_run_id") or record.mlflow_parent_run_id
    cfg = hpo.study
    params = {
        "num_trials": cfg.num_trials,
        "optimization_metric": cfg.optimization_metric,
        "sampler": cfg.sampler.type,
        "sampler_seed": cfg.sampler.seed,
        "pruner": cfg.pruner.type,
        "keep_top_k_trials": cfg.keep_top_k_trials,
        **{f"search_space.{s.name}": s.describe() for s in hpo.search_space},
    }
    run_id = tracker.start(
        existing, study_name(record.study_id), params, {"study_id": study_name(record.study_id)}
    )
    if existing != run_id:
        retry(lambda: study.set_user_attr("mlflow_parent_run_id", run_id), "record the MLflow run")
    record.mlflow_parent_run_id = run_id
    return tracker


def finish_parent_run(
    tracker: Any, study_dir: Path, exit_code: int, plots: list[Path], console: Any
) -> None:
    """Upload study.json, hpo.jsonl and the plots, and close the parent run (FINISHED for a
    study that ran, even with failed trials; FAILED when it could not go on). The study's
    files have it all: an unreachable server is a warning here."""
    if tracker is None:
        return
    try:
        paths = StudyPaths(study_dir)
        tracker.log_artifacts([paths.record, paths.log, *plots])
        tracker.finish("FINISHED" if exit_code in (0, 1) else "FAILED")
    except DataAugError as exc:
        console.print(f"warning: {exc.message}")


def tag_trial_state(tracker: Any, run_id: str | None, state: str, console: Any) -> None:
    """`optuna.state` on a trial's MLflow run, as the study records the trial: COMPLETE,
    PRUNED, or FAIL (anything else: an error left the objective, so Optuna fails it). A
    failed trial's server may be the reason it failed: one try then. The study's files have
    the state: an unreachable server is a warning here."""
    if tracker is None or run_id is None:
        return
    state = state if state in ("COMPLETE", "PRUNED") else "FAIL"
    try:
        tracker.tag_run(run_id, {"optuna.state": state}, patient=state != "FAIL")
    except DataAugError as exc:
        console.print(f"warning: {exc.message}", highlight=False, markup=False)
