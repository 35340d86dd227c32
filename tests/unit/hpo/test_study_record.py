"""study.json read back from disk, where anyone may have edited or planted it: every content
ends in one StudyStorageError line naming the file; study ids are what new_study_id makes."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from dataaug_multi_both.cli import list_studies
from dataaug_multi_both.errors import StudyStorageError
from dataaug_multi_both.hpo.study import (
    StudyRecord,
    find_study_dir,
    new_study_id,
    readable_studies,
    stored_identity,
    valid_study_id,
)
from dataaug_multi_both.hpo.study_access import load_study_for

GOOD_ID = "20260101-120000-abc123"


def record(**changes: Any) -> dict[str, Any]:
    data = asdict(
        StudyRecord(
            study_id=GOOD_ID,
            name="s",
            created="2026-01-01T12:00:00Z",
            storage="sqlite:////x/optuna_study.db",
            requested_trials=3,
            optimization_metric="val/criteria_matcher/f1",
            direction="maximize",
            config_hash="0" * 64,
            counts={"COMPLETE": 2},
            best={"number": 1, "trial_id": f"{GOOD_ID}-001", "value": 0.5, "params": {"lr": 1e-4}},
        )
    )
    data.update(changes)
    return data


def study_at(root: Path, text: str, name: str = f"study_{GOOD_ID}") -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "study.json").write_text(text, encoding="utf-8")
    return directory


def test_a_record_round_trips(tmp_path: Path) -> None:
    original = StudyRecord(**record())
    original.write(tmp_path)
    # the file names the study as the contract does (its directory name); in memory, the id
    assert json.loads((tmp_path / "study.json").read_text())["study_id"] == f"study_{GOOD_ID}"
    assert StudyRecord.read(tmp_path) == original
    extra = {**record(), "added_by_a_newer_version": [1, 2]}  # unknown keys are ignored
    (tmp_path / "study.json").write_text(json.dumps(extra))
    assert StudyRecord.read(tmp_path).study_id == GOOD_ID


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (DEEP, "nested too deeply"),
        (json.dumps(record())[:-1] + ', "extra": ' + DEEP + "}", "nested too deeply"),
        (json.dumps(record())[:40], "not valid JSON"),  # truncated by a crash
        ("", "not valid JSON"),
        ("[1, 2]", "not a mapping"),
        ("null", "not a mapping"),
        (json.dumps(record(requested_trials="3")), "requested_trials is str, not int"),
        (json.dumps(record(requested_trials=True)), "requested_trials is bool"),
        (json.dumps(record(name=["s"])), "name is list"),
        (json.dumps(record(counts=[1])), "counts is list"),
        (json.dumps(record(counts={"COMPLETE": "2"})), "counts holds"),
        (json.dumps(record(best={"value": "high"})), "best.value is not a number"),
        (json.dumps(record(best={"value": 1.0, "params": {"lr": [[1]]}})), "best.params"),
        (json.dumps(record(last_exit_code="1")), "last_exit_code is str"),
        (json.dumps(record(study_id="../../home")), "not a study id"),
        (json.dumps(record(study_id="*")), "not a study id"),
        (json.dumps(record(study_id=7)), "study_id is int"),
        (json.dumps({k: v for k, v in record().items() if k != "storage"}), "lacks 'storage'"),
    ],
)
def test_anything_else_is_one_line_naming_the_file(
    tmp_path: Path, content: str, fragment: str
) -> None:
    (tmp_path / "study.json").write_text(content, encoding="utf-8")
    with pytest.raises(StudyStorageError) as err:
        StudyRecord.read(tmp_path)
    message = err.value.message
    assert fragment in message and str(tmp_path / "study.json") in message
    assert "\n" not in message and len(message) < 400


def test_bytes_that_are_not_text_and_a_directory_in_its_place(tmp_path: Path) -> None:
    (tmp_path / "study.json").write_bytes(b"\xff\xfe{\x00")
    with pytest.raises(StudyStorageError, match="not UTF-8"):
        StudyRecord.read(tmp_path)
    other = tmp_path / "other"
    (other / "study.json").mkdir(parents=True)
    with pytest.raises(StudyStorageError, match="cannot read"):
        StudyRecord.read(other)


def test_study_ids() -> None:
    assert valid_study_id(new_study_id()) and valid_study_id(GOOD_ID) == GOOD_ID
    for bad in (
        "../x",
        "*",
        "",
        f"{GOOD_ID}/..",
        f"{GOOD_ID}\n",
        "20260101-120000-ABC123",
        None,
        3,
    ):
        with pytest.raises(StudyStorageError, match="not a study id"):
            valid_study_id(bad)


def test_the_identity_a_study_database_holds_is_checked() -> None:
    """_adopt_study_attributes takes these from the Optuna database into paths and globs."""
    assert stored_identity({"study_id": GOOD_ID, "study_dir": "/e/study_x"}) == (
        GOOD_ID,
        Path("/e/study_x"),
    )
    for attrs in (
        {"study_id": "*", "study_dir": "/e/study_x"},
        {"study_id": "../../etc", "study_dir": "/e/study_x"},
        {"study_id": GOOD_ID, "study_dir": "relative/dir"},
        {"study_id": GOOD_ID, "study_dir": "/e/../../etc"},
        {"study_id": GOOD_ID, "study_dir": ["/e"]},
        {"study_id": GOOD_ID},
    ):
        with pytest.raises(StudyStorageError):
            stored_identity(attrs)


def test_a_broken_study_json_does_not_hide_the_others(tmp_path: Path) -> None:
    good = study_at(tmp_path, json.dumps(record(name="kept")), f"study_{GOOD_ID}")
    study_at(tmp_path, DEEP, "study_20260101-120000-dddddd")
    studies, problems = readable_studies(tmp_path)
    assert [d for d, _ in studies] == [good] and len(problems) == 1
    assert "study_20260101-120000-dddddd" in problems[0]
    assert find_study_dir(tmp_path, "kept") == good
    assert find_study_dir(tmp_path, f"study_{GOOD_ID}") == good
    with pytest.raises(StudyStorageError, match="1 study.json unreadable"):
        find_study_dir(tmp_path, "missing")


def test_list_studies_names_a_broken_study_json_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study_at(tmp_path, DEEP)
    assert list_studies.main(["--experiments-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "nested too deeply" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_opening_a_study_never_sends_part_of_a_password_as_a_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_dir = study_at(tmp_path, json.dumps(record()))
    # an unencoded '@' in the password: SQLAlchemy would resolve "pass@127.0.0.1" as the host
    monkeypatch.setenv("DATAAUG_STUDY_STORAGE", "postgresql://optuna:se@cret@127.0.0.1:9/optuna")
    with pytest.raises(StudyStorageError) as raised:
        load_study_for(study_dir)
    assert "percent-encode" in str(raised.value)
    assert "cret" not in str(raised.value)
