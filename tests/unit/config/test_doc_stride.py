"""`dataset.doc_stride` left null follows `dataset.max_length` (a quarter of it)."""

from __future__ import annotations

import pytest

from dataaug_multi_both.config.compose import bundled_config_path, load_train_config
from dataaug_multi_both.config.schema import DatasetConfig, TrainConfig, default_doc_stride
from dataaug_multi_both.errors import ConfigError

TRAIN_YAML = str(bundled_config_path("train.yaml"))


def test_default_is_a_quarter_of_max_length() -> None:
    assert [default_doc_stride(n) for n in (64, 256, 512, 513)] == [16, 64, 128, 128]
    assert DatasetConfig().doc_stride == 64 and DatasetConfig(max_length=64).doc_stride == 16


def test_max_length_alone_is_accepted_and_the_stride_follows() -> None:
    config = load_train_config(TRAIN_YAML, ["dataset.max_length=64"], {})
    assert (config.dataset.max_length, config.dataset.doc_stride) == (64, 16)
    assert load_train_config(TRAIN_YAML, ["dataset.max_length=512"], {}).dataset.stride == 128


def test_an_explicit_stride_is_kept_and_still_checked() -> None:
    config = load_train_config(TRAIN_YAML, ["dataset.max_length=64", "dataset.doc_stride=8"], {})
    assert config.dataset.doc_stride == 8
    with pytest.raises(ConfigError, match=r"dataset\.doc_stride: 40 \(allowed: 0\.\.32"):
        load_train_config(TRAIN_YAML, ["dataset.max_length=64", "dataset.doc_stride=40"], {})


def test_null_builds_the_same_config_as_the_number_it_stands_for() -> None:
    """config.yaml, the feature-cache key and a resume's comparison all see the number."""
    implicit = load_train_config(TRAIN_YAML, [], {})
    explicit = load_train_config(TRAIN_YAML, ["dataset.doc_stride=64"], {})
    assert implicit.to_dict() == explicit.to_dict()
    assert implicit.to_dict()["dataset"]["doc_stride"] == 64
    again = TrainConfig.from_dict(implicit.to_dict())  # a trial's config.yaml read back
    assert again == implicit


def test_bundled_yaml_and_schema_agree() -> None:
    import yaml

    written = yaml.safe_load(bundled_config_path("train.yaml").read_text())["dataset"]
    assert written["doc_stride"] is None and written["max_length"] == DatasetConfig.max_length
