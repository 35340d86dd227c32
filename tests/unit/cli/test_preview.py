from __future__ import annotations

import pytest
import yaml

from dataaug_multi_both.cli._common import print_config
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.training.preflight import PreflightReport
from dataaug_multi_both.training.validation import DataSummary


def test_print_config_masks_passwords(capsys: pytest.CaptureFixture) -> None:
    config = TrainConfig().to_dict()
    config["tracking"]["mlflow_tracking_uri"] = "https://u:pw@host"
    print_config(config)
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["tracking"]["mlflow_tracking_uri"] == "https://u:***@host"
    assert config["tracking"]["mlflow_tracking_uri"] == "https://u:pw@host"  # not mutated


def test_preflight_summary_names_model_parameters_and_splits() -> None:
    alignment = dict.fromkeys(
        (
            "exact",
            "normalised",
            "fuzzy",
            "unaligned",
            "special_case_rows",
            "special_case_only_posts",
            "conflicting_status_rows",
            "duplicate_rows",
        ),
        0,
    )
    splits = {"train": {"posts": 8, "pairs": 72, "windows": 80}}
    report = PreflightReport(
        "tiny-bert", "/m", "embedded", 2_050_000, "cpu", DataSummary(alignment, splits, {})
    )
    lines = report.lines()
    assert lines[0] == (
        "model tiny-bert, 2.05M parameters, device cpu "
        "(embedded: randomly initialised, MiniLM's tokenizer from /m)"
    )
    minilm = PreflightReport("minilm", "/m", "embedded", 22_700_000, "cpu", report.data)
    assert minilm.lines()[0] == "model minilm, 22.70M parameters, device cpu (embedded: /m)"
    assert "splits (posts/pairs/windows): train 8/72/80" in lines
    assert lines[-1].endswith("nothing was trained or written")
