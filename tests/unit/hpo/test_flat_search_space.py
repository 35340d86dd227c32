from __future__ import annotations

import pytest

from dataaug_multi_both.config.compose import bundled_config_path
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.hpo.config import flat_search_space, load_hpo_config

UNIFORM = {"type": "uniform", "low": 0.0, "high": 0.1}


def test_nested_entries_take_their_dotted_name() -> None:
    raw = {
        "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
        "trainer": {"weight_decay": UNIFORM},
        "model": {"task_weights": {"evidence_binder": UNIFORM}},
    }
    assert flat_search_space(raw) == {
        "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
        "trainer.weight_decay": UNIFORM,
        "model.task_weights.evidence_binder": UNIFORM,
    }


def test_a_later_entry_replaces_one_of_the_same_name() -> None:
    raw = {"trainer.weight_decay": {"type": "uniform", "low": 0.0, "high": 0.5}}
    raw["trainer"] = {"weight_decay": UNIFORM}
    assert flat_search_space(raw) == {"trainer.weight_decay": UNIFORM}


def test_malformed_entries_are_left_for_the_parser() -> None:
    no_type = {"learning_rate": {"low": 1, "high": 2}}
    assert flat_search_space(no_type) == no_type
    assert flat_search_space([1, 2]) == [1, 2]


def test_search_space_entry_added_by_an_override() -> None:
    hpo = load_hpo_config(
        str(bundled_config_path("hpo.yaml")),
        ["+search_space.trainer.weight_decay={type: uniform, low: 0.0, high: 0.1}"],
        {},
        seed=None,
    )
    added = [s for s in hpo.search_space if s.name == "trainer.weight_decay"]
    assert len(added) == 1 and (added[0].path, added[0].high) == ("trainer.weight_decay", 0.1)
    assert hpo.search_space_raw["trainer.weight_decay"] == UNIFORM


def test_search_space_entry_without_plus_says_how() -> None:
    with pytest.raises(ConfigError, match=r"with a leading \+"):
        load_hpo_config(
            str(bundled_config_path("hpo.yaml")),
            ["search_space.trainer.weight_decay={type: uniform, low: 0.0, high: 0.1}"],
            {},
            seed=None,
        )
    with pytest.raises(
        ConfigError, match=r"study\.num_trails \(did you mean study\.num_trials\?\)"
    ):
        load_hpo_config(str(bundled_config_path("hpo.yaml")), ["study.num_trails=3"], {}, None)
