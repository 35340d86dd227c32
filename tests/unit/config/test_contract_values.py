"""Values the contract allows: a null model revision, `{study_dir}` in study.storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.hpo.storage import STORAGE_ENV, resolve_storage_url, storage_url


def test_a_null_model_revision_means_the_default_branch() -> None:
    config = TrainConfig.from_dict({"model": {"revision": None}})
    assert config.model.revision is None
    assert TrainConfig.from_dict({}).model.revision == "main"


def test_study_dir_is_expanded_in_the_storage_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    url = storage_url("sqlite:///{study_dir}/optuna.db", tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve()}/optuna.db"
    # recorded in study.json, expanded, it is the study's own file: a resume uses it
    assert resolve_storage_url(tmp_path, recorded=url) == url
