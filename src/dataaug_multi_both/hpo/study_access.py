"""Opening a study from its directory: study.json, then its Optuna storage. A module of its
own so that listings and cleanup open a study without importing the evaluation stack (torch,
transformers: seconds of every command's start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataaug_multi_both.errors import StudyNotFoundError, StudyStorageError
from dataaug_multi_both.hpo.storage import redact_url, refuse_misread, resolve_storage_url
from dataaug_multi_both.hpo.study import STUDY_FILE, StudyRecord


def load_study_for(study_dir: Path) -> tuple[StudyRecord, Any]:
    """The study's record and its Optuna study; StudyNotFoundError / StudyStorageError
    (exit 3) when there is none or its storage cannot be opened."""
    if not (study_dir / STUDY_FILE).is_file():
        raise StudyNotFoundError(f"no study at {study_dir} (no {STUDY_FILE})")
    record = StudyRecord.read(study_dir)
    import optuna

    url = resolve_storage_url(study_dir, recorded=record.storage)
    refuse_misread(url)  # before SQLAlchemy sends part of a password out as a host name
    try:
        return record, optuna.load_study(study_name=record.name, storage=url)
    except KeyError as exc:
        raise StudyNotFoundError(
            f"study {record.name!r} is not in its storage {redact_url(url)}"
        ) from exc
    except Exception as exc:  # unreachable database, bad URL
        raise StudyStorageError(
            f"cannot open the study storage {redact_url(url)}: {type(exc).__name__}"
        ) from exc
