"""What a worker with nothing left to claim prints: trial numbers read from a database that
may have been edited."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from dataaug_multi_both.errors import StudyStorageError
from dataaug_multi_both.hpo.runner import waiting_notice
from dataaug_multi_both.hpo.storage import with_connection_retry


def study_with_a_text_number(db: Path) -> None:
    """Three RUNNING trials; the database edited so that trial 1's number is text."""
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{db}")
    for _ in range(3):
        study.ask()
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE trials SET number = '[/x]' || char(27) || '[2J' WHERE number = 1"
        )


def test_reading_an_edited_study_is_a_storage_error_not_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    study_with_a_text_number(db)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    with pytest.raises(StudyStorageError, match="read the trials: .* was the database edited"):
        with_connection_retry(study.get_trials, "read the trials", f"sqlite:///{db}", 5)


def test_the_notice_names_running_trials_and_only_integer_numbers(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    study_with_a_text_number(db)
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")  # uncached: as stored, unsorted
    trials = storage.get_all_trials(storage.get_study_id_from_name("s"))
    notice = waiting_notice(trials)
    assert notice.startswith("waiting for 3 trial(s) running on other workers (")
    assert sorted(notice.split("(")[2].split(")")[0].split(", ")) == ["0", "2", "?"]
    assert "\x1b" not in notice and "[/x]" not in notice
    console = Console(record=True, width=200)
    console.print(notice, markup=False, highlight=False)  # as the runner prints it
    assert "Ctrl-C stops this worker safely" in console.export_text()


def test_the_notice_lists_ten_numbers_at_most(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    for _ in range(12):
        study.ask()
    notice = waiting_notice(study.get_trials())
    assert "(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...)" in notice and "12 trial(s)" in notice
