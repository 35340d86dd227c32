from __future__ import annotations

from typing import Any

import optuna
import pytest

from dataaug_multi_both.config.compose import bundled_config_path
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.hpo.config import load_hpo_config
from dataaug_multi_both.hpo.objective import trial_config
from dataaug_multi_both.hpo.search_space import parse_search_space, sample


def test_contract_space_parses_with_aliases() -> None:
    hpo = load_hpo_config(str(bundled_config_path("hpo.yaml")), [], {}, seed=None)
    paths = {s.name: s.path for s in hpo.search_space}
    assert paths["learning_rate"] == "trainer.learning_rate"
    assert paths["task_weights.criteria_matcher"] == "model.task_weights.criteria_matcher"
    assert paths["model_id"] == "model.model_id"
    assert hpo.study.sampler.type == "TPESampler" and hpo.study.pruner.type == "MedianPruner"
    assert hpo.train.trainer.max_epochs == 10  # inherited from train.yaml


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"nonsense.key": {"type": "uniform", "low": 0, "high": 1}}, "unknown config key"),
        ({"learning_rate": {"type": "uniform", "low": 1, "high": 1}}, "must be < high"),
        (
            {"learning_rate": {"type": "loguniform", "low": 0, "high": 1}},
            "loguniform needs low > 0",
        ),
        ({"batch_size": {"type": "categorical", "choices": []}}, "non-empty list"),
        ({"batch_size": {"type": "gaussian"}}, "is not one of"),
        ({"batch_size": {"type": "int", "low": 1.5, "high": 4}}, "integer low/high"),
        (
            {"batch_size": {"type": "int", "low": 0, "high": 4, "log": True}},
            "int with log needs low > 0",
        ),
        (
            {"learning_rate": {"type": "uniform", "low": 0.1, "high": 1, "step": 2}},
            "unexpected key",
        ),
    ],
)
def test_bad_entries_are_config_errors(entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_search_space(entry)
    assert fragment in err.value.message and err.value.exit_code == 2


def test_direction_other_than_maximize_is_rejected() -> None:
    with pytest.raises(ConfigError, match="maximize only"):
        load_hpo_config(
            str(bundled_config_path("hpo.yaml")), ["study.direction=minimize"], {}, None
        )


def test_sampled_values_land_in_the_training_config() -> None:
    hpo = load_hpo_config(str(bundled_config_path("hpo_small.yaml")), [], {}, seed=3)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    values = sample(trial, hpo.search_space)
    config = trial_config(hpo.train, values, "s-000")
    assert config.model.model_id in ("minilm", "tiny-bert")
    assert 3e-5 <= config.trainer.learning_rate <= 3e-4
    assert config.model.task_weights.evidence_binder == values["model.task_weights.evidence_binder"]
    assert config.output.trial_id == "s-000" and config.seeds.torch == 3


def test_int_parameters_with_step() -> None:
    specs = parse_search_space(
        {"trainer.gradient_accumulation_steps": {"type": "int", "low": 1, "high": 7, "step": 2}}
    )
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    drawn = {sample(study.ask(), specs)["trainer.gradient_accumulation_steps"] for _ in range(30)}
    assert drawn <= {1, 3, 5, 7} and len(drawn) > 1


@pytest.mark.parametrize(
    "path", ["tracking.vault_addr", "tracking.mlflow_tracking_uri", "output.experiments_dir"]
)
def test_where_credentials_and_files_go_is_not_searchable(path: str) -> None:
    """A study's config.yaml is passed around: its search space must not pin tracking.* or
    output.* for every trial (that would route the user's token)."""
    with pytest.raises(ConfigError, match="cannot be searched"):
        parse_search_space({path: {"type": "categorical", "choices": ["http://127.0.0.1:1"]}})
