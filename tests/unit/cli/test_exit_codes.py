"""The exit-code table of every command against the contract (README, docs/management.md),
and `main()` called in-process returns the same codes as the command line."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dataaug_multi_both import errors as e
from dataaug_multi_both.errors import EXIT_CODES, exit_code_for

# (command, exception, code) as the contract states them
CONTRACT = [
    ("train", e.TrainingError("nan"), 1),
    ("train", e.ConfigError("bad key"), 2),
    ("train", e.TrialInUse("another process trains this trial"), 2),
    ("train", e.DataLoadError("no data"), 3),
    ("train", e.StorageError("disk"), 4),
    ("train", e.TrackingError("mlflow"), 5),
    ("train", e.Interrupted("ctrl-c"), 130),
    ("train", e.Interrupted("term", signal.SIGTERM), 143),
    ("hpo", e.TrialsFailed("2 failed"), 1),
    ("hpo", e.ConfigError("search space"), 2),
    ("hpo", e.StudyStorageError("db gone"), 3),
    ("hpo", e.StorageError("disk"), 4),
    ("hpo", e.TrackingError("mlflow"), 5),
    ("hpo", e.Interrupted("term", signal.SIGTERM), 143),
    ("evaluate_study", e.TrainingError("inference"), 1),
    ("evaluate_study", e.ReportWriteError("read-only"), 1),
    ("evaluate_study", e.StudyNotFoundError("no study"), 2),
    ("evaluate_study", e.StudyStorageError("db"), 2),
    ("evaluate_study", e.CheckpointUnavailableError("none verifies"), 3),
    ("evaluate_study", e.EvaluationDataError("split"), 4),
    ("evaluate_study", e.Interrupted("ctrl-c"), 130),
    ("cleanup", e.ScopeError("/"), 2),
    ("cleanup", e.StorageError("unreadable manifest"), 1),
    ("list_studies", e.StudyStorageError("db"), 1),
    ("list_checkpoints", e.StorageError("unreadable manifest"), 1),
    ("predict", e.TrainingError("inference"), 1),
    ("predict", e.ConfigError("no text column"), 2),
    ("predict", e.DataLoadError("no such input"), 3),
    ("predict", e.CheckpointUnavailableError("SHA256"), 3),
    ("predict", e.OutputWriteError("read-only"), 4),
    ("predict", e.StudyNotFoundError("no study.json"), 3),
    ("export", e.ConfigError("output not empty"), 2),
    ("export", e.CheckpointUnavailableError("no such checkpoint"), 3),
    ("export", e.OutputWriteError("read-only"), 4),
    ("export", e.StudyNotFoundError("no study.json"), 3),
]


@pytest.mark.parametrize(("command", "error", "code"), CONTRACT)
def test_the_table_matches_the_contract(command: str, error: e.DataAugError, code: int) -> None:
    assert exit_code_for(command, error) == code


def test_every_command_and_every_error_class_is_covered() -> None:
    assert set(EXIT_CODES) == {
        "train",
        "hpo",
        "evaluate_study",
        "cleanup",
        "list_studies",
        "list_checkpoints",
        "predict",
        "export",
    }
    classes = {c for c in vars(e).values() if isinstance(c, type) and issubclass(c, e.DataAugError)}
    assert classes - {type(err) for _, err, _ in CONTRACT} == {e.DataAugError}


def test_main_in_process_returns_the_contract_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataaug_multi_both.cli import cleanup, evaluate_study, list_checkpoints

    assert evaluate_study.main(["--study-dir", str(tmp_path / "nope")]) == 2
    assert cleanup.main(["--experiments-dir", str(tmp_path / "nope"), "--dry-run"]) == 2
    assert list_checkpoints.main(["--trial-dir", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.count("error: ") == 3 and "Traceback" not in err


def test_first_line() -> None:
    assert e.first_line(ValueError("one\ntwo")) == "one"
    assert e.first_line(ValueError("")) == "ValueError"
    assert e.first_line(KeyError()) == "KeyError"
