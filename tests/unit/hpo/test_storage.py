"""Which storage URL a study uses: one precedence for hpo, resume and evaluate_study."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataaug_multi_both.hpo.storage import (
    STORAGE_ENV,
    StudyStorageError,
    is_redacted,
    redact_url,
    resolve_storage_url,
)

PG = "postgresql://alice:pw@db:5432/optuna"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = f"sqlite:///{(tmp_path / 'optuna_study.db').resolve()}"
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert resolve_storage_url(tmp_path) == local
    # a study directory does not choose the database server: only one on this machine
    with pytest.raises(StudyStorageError, match="does not choose which database server"):
        resolve_storage_url(tmp_path, recorded=PG)
    loopback = "postgresql://alice@127.0.0.1:5432/optuna"
    assert resolve_storage_url(tmp_path, recorded=loopback).endswith("@127.0.0.1:5432/optuna")
    with pytest.raises(StudyStorageError):  # a name that merely starts like a loopback address
        resolve_storage_url(tmp_path, recorded="postgresql://alice@127.0.0.1.example.org/optuna")
    assert resolve_storage_url(tmp_path, PG, "sqlite:////elsewhere.db").startswith(
        "postgresql+psycopg2://"
    )
    monkeypatch.setenv(STORAGE_ENV, "sqlite:////from/env.db")
    assert resolve_storage_url(tmp_path, PG, PG) == "sqlite:////from/env.db"


def test_a_moved_sqlite_study_uses_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    old = "sqlite:////old/place/study_x/optuna_study.db"
    with pytest.raises(StudyStorageError, match=STORAGE_ENV):  # a recorded file elsewhere
        resolve_storage_url(tmp_path, recorded=old)
    (tmp_path / "optuna_study.db").write_bytes(b"")
    assert resolve_storage_url(tmp_path, recorded=old).endswith(f"{tmp_path}/optuna_study.db")


def test_a_redacted_url_is_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    recorded = redact_url(PG)
    assert recorded == "postgresql://alice:***@db:5432/optuna" and is_redacted(recorded)
    assert not is_redacted(PG) and not is_redacted("sqlite:////a.db")
    with pytest.raises(StudyStorageError, match=STORAGE_ENV):
        resolve_storage_url(tmp_path, recorded=recorded)
    assert "pw" not in str(recorded)
