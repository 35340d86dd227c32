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
