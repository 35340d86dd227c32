from __future__ import annotations

from pathlib import Path

import pytest

from dataaug_multi_both.config.compose import bundled_config_path, load_train_config
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.config.suggest import did_you_mean, schema_keys, unknown_key_hint
from dataaug_multi_both.errors import ConfigError

KNOWN = schema_keys(TrainConfig)


def test_schema_keys_are_the_dotted_leaves() -> None:
    assert "trainer.learning_rate" in KNOWN and "model.task_weights.criteria_matcher" in KNOWN
    assert "trainer" not in KNOWN and "model.task_weights" not in KNOWN


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("trainer.lr", "trainer.learning_rate"),  # a familiar name, same section
        ("trainer.learning_rat", "trainer.learning_rate"),  # a typo of the leaf
        ("traner.batch_size", "trainer.batch_size"),  # a typo of the section
        ("dataset.learning_rate", "trainer.learning_rate"),  # the right leaf, wrong section
        ("trainer.num_train_epochs", "trainer.max_epochs"),  # Hugging Face Trainer's name
        ("model.modle_id", "model.model_id"),
        ("dataset.stride", "dataset.doc_stride"),
    ],
)
def test_did_you_mean(typed: str, meant: str) -> None:
    assert did_you_mean(typed, KNOWN) == meant


def test_nothing_close_means_no_guess_but_the_section_keys() -> None:
    assert did_you_mean("trainer.zzzzzz", KNOWN) is None
    assert did_you_mean("trainer.learning_rate", KNOWN) is None  # known: nothing to suggest
    hint = unknown_key_hint("retention.zzzzzz", KNOWN)
    assert hint.startswith(" (keys under retention: ") and "keep_last_n" in hint
    assert unknown_key_hint("zzzz", KNOWN) == ""


def test_override_of_an_unknown_key_suggests_the_known_one() -> None:
    with pytest.raises(ConfigError) as err:
        load_train_config(str(bundled_config_path("train.yaml")), ["trainer.lr=1e-4"], {})
    assert err.value.message == (
        "unknown configuration key trainer.lr (did you mean trainer.learning_rate?)"
    )
    assert err.value.exit_code == 2


def test_added_unknown_key_and_unknown_key_in_a_file_suggest_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.lr \(did you mean trainer\.learning_rate\?\)"):
        load_train_config(str(bundled_config_path("train.yaml")), ["+trainer.lr=1e-4"], {})
    path = tmp_path / "mine.yaml"
    path.write_text("defaults:\n  - train\n  - _self_\nmodel:\n  modle_id: x\n")
    with pytest.raises(ConfigError, match=r"model\.modle_id \(did you mean model\.model_id\?\)"):
        load_train_config(str(path), [], {})


def test_a_known_key_the_file_leaves_out_is_added_with_plus(tmp_path: Path) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text("model:\n  model_id: tiny-bert\n")
    with pytest.raises(ConfigError, match=r"add it with \+trainer\.max_epochs=VALUE"):
        load_train_config(str(path), ["trainer.max_epochs=1"], {})
    config = load_train_config(str(path), ["+trainer.max_epochs=1"], {})
    assert config.trainer.max_epochs == 1


def test_names_from_trainer_and_lightning_that_live_elsewhere_or_not_at_all() -> None:
    from dataaug_multi_both.config.schema import TrainConfig
    from dataaug_multi_both.config.suggest import did_you_mean, schema_keys

    known = schema_keys(TrainConfig)
    assert did_you_mean("trainer.val_check_interval", known) == "trainer.eval_steps"
    assert did_you_mean("trainer.save_total_limit", known) == "retention.keep_last_n"
    assert did_you_mean("trainer.patience", known) == "trainer.early_stopping_patience"
    assert "there is no step limit" in str(did_you_mean("trainer.max_steps", known))
    assert "--seed" in str(did_you_mean("trainer.seed", known))
    assert "trainer.precision=bf16" in str(did_you_mean("trainer.bf16", known))


def test_a_search_space_field_points_at_the_whole_new_entry() -> None:
    from pathlib import Path

    from dataaug_multi_both.config.compose import missing_key_message

    message = missing_key_message(
        "search_space.trainer.lr_scheduler_type.choices", [], Path("hpo.yaml")
    )
    assert (
        "'+search_space.trainer.lr_scheduler_type={type: categorical, choices: [a, b]}'" in message
    )
