"""The model card reads the study's evaluation report as untrusted data."""

from __future__ import annotations

from typing import Any

from dataaug_multi_both.data.criteria import criteria_for
from dataaug_multi_both.serving.model_card import model_card
from dataaug_multi_both.serving.model_source import LoadedModel
from dataaug_multi_both.training.thresholds import fixed_threshold


def card(report: Any, dataset: str = "irlab-udc/redsm5") -> str:
    loaded = LoadedModel(
        model=None,  # type: ignore[arg-type]
        tokenizer=None,
        criteria=criteria_for(9),
        max_length=256,
        doc_stride=64,
        max_answer_tokens=30,
        threshold=fixed_threshold(0.5, 9),
        pooling="mean",
        base_model="minilm",
        source="study x",
        report=report,
        config={"dataset": {"dataset_id": dataset}},
    )
    return model_card(loaded)


def test_a_hostile_report_neither_breaks_nor_injects() -> None:
    hostile = {
        "test_split": {"posts": "<script>", "pairs": [1]},
        "metrics": {"test/criteria_matcher/f1": 0.5, "x\n# Validated diagnostic device": 1.0},
        "confidence_intervals": {
            "metrics": {
                "test/criteria_matcher/f1": {"low": "x", "high": None},
                "x\n# Validated diagnostic device": {"low": 0.1, "high": 0.2},
            }
        },
        "baselines": {"all_absent": "not a mapping", "<img src=https://e/x>": {}},
        "notes": ["line\n# Heading <script>alert(1)</script> [link](https://e)", 3],
    }
    text = card(hostile)
    assert "<script" not in text and "<img" not in text and "](" not in text
    assert not any(line.startswith("# Validated") for line in text.splitlines())
    assert "| test/criteria_matcher/f1 | 0.500 | n/a | n/a |" in text
    assert "not a diagnostic device" in text
    for wrong in (None, [], "text", {"metrics": "x", "baselines": [1]}):
        card(wrong)  # never an exception


def test_a_synthetic_model_says_so_and_claims_nothing_about_reddit() -> None:
    text = card(None, dataset="synthetic")
    assert "synthetic ReDSM5-format data" in text and "Reddit" not in text.split("## Intended")[1]
