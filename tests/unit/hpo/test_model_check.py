from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dataaug_multi_both.config.compose import bundled_config_path
from dataaug_multi_both.errors import DataLoadError
from dataaug_multi_both.hpo.config import load_hpo_config
from dataaug_multi_both.hpo.model_check import (
    models_needing_the_hub,
    require_loadable_models,
    study_model_ids,
)


def hpo_config(*overrides: str):  # type: ignore[no-untyped-def]
    return load_hpo_config(str(bundled_config_path("hpo.yaml")), list(overrides), {}, None)


def nothing_cached(repo_id: str, revision: str | None) -> bool:
    return False


def unreachable() -> bool:
    return False


def test_the_models_a_study_may_sample() -> None:
    ids, searched = study_model_ids(hpo_config())
    assert searched and ids[0] == "mental-bert" and len(ids) == 5
    fixed = hpo_config("~search_space.model_id", "model.model_id=tiny-bert")
    assert study_model_ids(fixed) == (["tiny-bert"], False)


def test_embedded_local_and_cached_models_need_no_hub(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    ids = ["minilm", "tiny-bert", str(tmp_path / "mine"), "roberta-base", "owner/model"]
    cached = {"FacebookAI/roberta-base"}
    missing = models_needing_the_hub(ids, "main", lambda repo, _rev: repo in cached)
    assert [s.resolved for s in missing] == ["owner/model"]


def test_default_study_offline_stops_with_the_alternatives() -> None:
    with pytest.raises(DataLoadError) as err:
        require_loadable_models(hpo_config(), nothing_cached, unreachable)
    message = err.value.message
    assert err.value.exit_code == 3
    assert "mental-bert (mental/mental-bert-base-uncased)" in message
    assert "minilm and tiny-bert" in message
    assert "'search_space.model_id.choices=[minilm,tiny-bert]'" in message


def test_a_fixed_hub_model_names_the_model_override() -> None:
    fixed = hpo_config("~search_space.model_id", "model.model_id=roberta-base")
    with pytest.raises(DataLoadError, match=r"e\.g\. model\.model_id=minilm"):
        require_loadable_models(fixed, nothing_cached, unreachable)


def test_the_hub_is_asked_only_when_a_model_needs_it() -> None:
    asked = []

    def reachable() -> bool:
        asked.append(True)
        return True

    require_loadable_models(hpo_config(), nothing_cached, reachable)  # online: fine
    offline_ok = hpo_config("search_space.model_id.choices=[minilm,tiny-bert]")
    require_loadable_models(offline_ok, nothing_cached, reachable)
    assert len(asked) == 1


def test_a_missing_local_model_directory_is_a_load_error() -> None:
    hpo = hpo_config("search_space.model_id.choices=[./no-such-model]")
    with pytest.raises(DataLoadError, match="model directory not found"):
        require_loadable_models(hpo, nothing_cached, unreachable)
    assert dataclasses.is_dataclass(hpo)
