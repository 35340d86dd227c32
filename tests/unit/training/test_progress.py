"""The per-epoch metric table: subsets named, per-criterion detail left out, the applied
thresholds shown as the range they span."""

from __future__ import annotations

from rich.console import Console

from dataaug_multi_both.training.progress import metrics_table


def render(metrics: dict, notes: dict | None = None) -> str:
    console = Console(width=200, record=True)
    console.print(metrics_table(2, 3, metrics, "val/criteria_matcher/f1", notes))
    return console.export_text()


def test_groups_carry_their_subset_and_missing_values_read_n_a() -> None:
    text = render(
        {
            "val/criteria_matcher/f1": 0.5,
            "val/criteria_matcher/f1_FATIGUE": 0.25,
            "val/evidence_binder/exact_match": None,
        },
        {"val/criteria_matcher": "48 posts", "val/evidence_binder": "73 pos / 359 neg pairs"},
    )
    assert "f1*=0.5000" in text and "FATIGUE" not in text
    assert "(48 posts)" in text and "(73 pos / 359 neg pairs)" in text
    assert "exact_match=n/a" in text and "* the optimisation metric" in text


def test_per_criterion_thresholds_show_as_their_range() -> None:
    text = render(
        {
            "val/criteria_matcher/threshold": 0.5,
            "val/criteria_matcher/threshold_FATIGUE": 0.2,
            "val/criteria_matcher/threshold_ANHEDONIA": 0.7,
        }
    )
    assert "thresholds=0.2000..0.7000 (per criterion)" in text
    assert "threshold=0.5000" not in text
    assert "threshold=0.5000" in render({"val/criteria_matcher/threshold": 0.5})
