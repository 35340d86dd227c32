"""Readers of files a run wrote and a stranger may have edited: any content ends in the
command's error (one line) or is skipped, never in a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from dataaug_multi_both.config.compose import artifact_config
from dataaug_multi_both.data.splits import SplitManifest
from dataaug_multi_both.errors import CheckpointUnavailableError, ConfigError, DataLoadError
from dataaug_multi_both.training.evaluation import build_model
from dataaug_multi_both.training.run_log import RunLog

NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("text", [NESTED, "[1]", "{", "\ud800", '{"post_ids": 7}'])
def test_an_edited_split_manifest_is_a_data_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "split_manifest.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(DataLoadError):
        SplitManifest.read(path)


def test_a_fifo_planted_as_a_split_manifest_does_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "split_manifest.json"
    os.mkfifo(path)
    with pytest.raises(DataLoadError, match="not a regular file"):
        SplitManifest.read(path)


def test_run_log_lines_that_are_not_objects_are_skipped(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "train.jsonl")
    log.write("run_start", epoch=0)
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write(f'[1]\n{NESTED}\n"text"\n')
    log.write("epoch_end", epoch=1)
    assert [r["event"] for r in log.records()] == ["run_start", "epoch_end"]


@pytest.mark.parametrize(
    "text",
    [
        NESTED,
        "- a list\n",
        "a: [unclosed\n",
        "just text\n",
        "&a [*a]\n",
        "x: !!python/object:os.system ls\n",
    ],
)
def test_a_config_in_an_artifact_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        artifact_config(path)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"model_args": "x", "config": {}},
        {"model_args": {"encoder_config": NESTED}, "config": {"model": {}}},
        {"model_args": {"encoder_config": "{}"}, "config": {"model": []}},
    ],
)
def test_a_checkpoint_that_does_not_describe_its_model_is_unavailable(payload: dict) -> None:
    with pytest.raises(CheckpointUnavailableError, match="does not describe its model"):
        build_model(payload, torch.device("cpu"))


def test_yaml_aliases_that_explode_or_loop_are_refused_at_once(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join([*lines, "retention: {keep_last_n: *a9}"]))
    with pytest.raises(ConfigError, match="aliases expand"):
        artifact_config(path)
    path.write_text("a: &a [*a]\n")
    with pytest.raises(ConfigError, match="refers to itself"):
        artifact_config(path)
    path.write_text("a: &x [1, 2]\nb: *x\n")  # a plain alias is fine
    assert artifact_config(path) == {"a": [1, 2], "b": [1, 2]}


def test_keys_that_are_not_names_are_a_config_error(tmp_path: Path) -> None:
    from dataaug_multi_both.config.schema import TrainConfig

    path = tmp_path / "config.yaml"
    path.write_text("retention: {1: 2, zz: 3}\n")
    with pytest.raises(ConfigError, match="not a name"):
        TrainConfig.from_dict(artifact_config(path))


def test_a_symlink_planted_as_the_run_log_is_never_written_through(tmp_path: Path) -> None:
    from dataaug_multi_both.errors import StorageError

    target = tmp_path / "bashrc"
    target.write_text("untouched\n")
    (tmp_path / "train.jsonl").symlink_to(target)
    with pytest.raises(StorageError, match="symlink"):
        RunLog(tmp_path / "train.jsonl").write("run_start", epoch=0)
    assert target.read_text() == "untouched\n"


def test_a_study_database_names_trial_directories_not_paths() -> None:
    from dataaug_multi_both.layout import recorded_trial_name

    assert recorded_trial_name("/x/experiments/trial_20261127-000000-abcdef-001") == (
        "trial_20261127-000000-abcdef-001"
    )
    for value in (None, 7, ["trial_a"], "/etc", "trial_", "trial_..", "../trial_/.."):
        assert recorded_trial_name(value) is None


def test_a_manifest_cannot_hand_a_resume_another_trial(tmp_path: Path) -> None:
    from dataaug_multi_both.training.run_state import trial_dir_of

    experiments = tmp_path / "experiments"
    mine = experiments / "trial_mybest"
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "checkpoints" / "manifest.json").write_text(
        '{"trial_id": "mybest", "optimization_metric": "m", "records": []}'
    )
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    (downloaded / "manifest.json").write_text(
        '{"trial_id": "x", "optimization_metric": "m", "records": [], ' f'"trial_dir": "{mine}"}}'
    )
    assert trial_dir_of(downloaded / "epoch_001.pt", experiments) == downloaded.parent
