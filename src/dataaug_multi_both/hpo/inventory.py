"""The studies under an experiments directory, as plain rows for listings (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataaug_multi_both.hpo.storage import redact_url, storage_url
from dataaug_multi_both.hpo.study import StudyRecord, study_dirs, study_status
from dataaug_multi_both.layout import StudyPaths, study_name
from dataaug_multi_both.metric_names import metric_sign


def live_counts(study_dir: Path, record: StudyRecord) -> dict[str, int] | None:
    """Trial states read from the study's own SQLite database (None when it has none or it
    cannot be read: the counts of study.json are used then)."""
    db = StudyPaths(study_dir).database
    if not db.is_file():
        return None
    import optuna

    try:
        storage = optuna.storages.RDBStorage(
            storage_url(None, study_dir), skip_compatibility_check=True
        )
        study_id = storage.get_study_id_from_name(record.name)
        counts: dict[str, int] = {}
        for trial in storage.get_all_trials(study_id, deepcopy=False):
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
        return counts
    except Exception:  # a study being written, a locked file: fall back to study.json
        return None


def best_metric_value(record: StudyRecord) -> float | None:
    """The best trial's value as the metric itself: study.json keeps Optuna's objective,
    a loss as its negative."""
    value = record.best.get("value") if record.best else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return metric_sign(record.optimization_metric) * float(value)


def study_rows(experiments_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for directory in study_dirs(experiments_dir):
        record = StudyRecord.read(directory)
        counts = live_counts(directory, record) or record.counts
        finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        rows.append(
            {
                "study_id": study_name(record.study_id),
                "name": record.name,
                "trials": finished,
                "best_metric": best_metric_value(record),
                "status": study_status(finished, record.requested_trials, record.last_exit_code),
                "created": record.created,
                "requested_trials": record.requested_trials,
                "optimization_metric": record.optimization_metric,
                "pruned": counts.get("PRUNED", 0),
                "failed": counts.get("FAIL", 0),
                "running": counts.get("RUNNING", 0),
                "storage": redact_url(record.storage),
                "study_dir": str(directory),
            }
        )
    return rows
