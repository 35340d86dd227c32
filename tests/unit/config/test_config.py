from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataaug_multi_both.config.compose import bundled_config_path, load_train_config
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError


def test_bundled_train_yaml_has_every_key_and_validates() -> None:
    config = load_train_config(str(bundled_config_path("train.yaml")), [], {})
    assert config == TrainConfig(seeds=config.seeds)  # file defaults == schema defaults
    assert config.seeds.python == config.seeds.numpy == config.seeds.torch == 42
    assert config.dataset.dataset_id == "irlab-udc/redsm5"
    assert (config.retention.keep_last_n, config.retention.keep_best_k_max) == (1, 2)


def test_default_path_falls_back_to_the_bundled_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/train.yaml here
    assert load_train_config(None, [], {}).trainer.max_epochs == 10


def test_precedence_file_then_overrides_then_flags() -> None:
    config = load_train_config(
        str(bundled_config_path("demo.yaml")),
        ["trainer.batch_size=4", "trainer.max_epochs=7"],
        {"trainer.max_epochs": 2, "model.model_id": "tiny-bert"},
        seed=3,
    )
    assert config.dataset.dataset_id == "synthetic"  # from demo.yaml
    assert config.trainer.batch_size == 4  # override
    assert config.trainer.max_epochs == 2  # flag beats override
    assert config.model.model_id == "tiny-bert"
    assert config.seeds.torch == 3


def test_explicit_seed_in_config_is_kept() -> None:
    config = load_train_config(
        str(bundled_config_path("train.yaml")), ["seeds.numpy=9"], {}, seed=1
    )
    assert (config.seeds.python, config.seeds.numpy) == (1, 9)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("trainer.batch_size=0", "trainer.batch_size: 0"),
        ("trainer.learning_rate=-1", "trainer.learning_rate"),
        ("trainer.batch_size=big", "an integer"),
        ("trainer.precision=fp8", "bf16, fp16"),
        ("retention.keep_best_k=3", "keep_best_k_max"),
        ("trainer.optimization_metric=val_bogus", "unknown optimization metric"),
        ("dataset.doc_stride=500", "dataset.doc_stride"),
        ("dataset.split_ratios=[0.5,0.5]", "split_ratios"),
        ("model.num_criteria_classes=12", "num_criteria_classes"),
        ("tracking.mlflow_tracking_uri=ftp://x", "mlflow_tracking_uri"),
        ("trainer.nonsense=1", "unknown configuration key trainer.nonsense"),
        ("trainer.lr=1e-4", "did you mean trainer.learning_rate?"),
        ("trainer.mixed_precision=maybe", "true or false"),
    ],
)
def test_bad_values_name_key_and_allowed(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_train_config(str(bundled_config_path("train.yaml")), [override], {})
    assert fragment in err.value.message
    assert err.value.exit_code == 2


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("defaults:\n  - train\n  - _self_\nmodel:\n  modle_id: x\n")
    with pytest.raises(ConfigError, match="modle_id"):
        load_train_config(str(path), [], {})


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_train_config(os.path.join("nowhere", "x.yaml"), [], {})
