"""What `evaluate_study` prints: plain renderings of `evaluation_report.json` (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from dataaug_multi_both.training.baselines import BASELINES

HEAD_TITLES = {"criteria_matcher": "matcher", "evidence_binder": "binder"}
SUBSET_TITLES = {
    "posts": "posts",
    "pairs": "pairs",
    "positive_pairs": "positive pairs",
    "negative_pairs": "negative pairs",
}


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    best, split = report["best_trial"], report["test_split"]
    threshold = report["threshold"]
    value = best["validation_value"]
    chosen = (
        f"{threshold['policy']}, chosen on validation"
        if threshold["chosen_on"] == "validation"
        else f"{threshold['policy']} ({threshold['source']})"
    )
    values = sorted(set(threshold["per_criterion"].values()))
    shown = (
        f"{threshold['value']:.3f}"
        if len(values) == 1
        else f"{min(values):.3f}..{max(values):.3f} per criterion"
    )
    intervals = report["confidence_intervals"]
    return [
        f"study {report['study']['name']}: best trial {best['number']} ({best['id']}), "
        f"validation {best['optimization_metric']} {_number(value, 4)}; checkpoint "
        f"{Path(report['checkpoint']['path']).name} (epoch {report['checkpoint']['epoch']})",
        f"{split['name']} split: {split['posts']} posts, {split['pairs']} pairs "
        f"({report['subsets']['sizes']['positive_pairs']} positive with aligned evidence), "
        f"{split['windows']} windows; decision threshold {shown} ({chosen})",
        f"intervals: {intervals['level']:.0%} {intervals['method']}, "
        f"{intervals['resamples']} resamples (seed {intervals['seed']})",
    ]


def headline_table(report: dict[str, Any]) -> Table:
    """One row per headline metric: subset (n), value, interval, and the baselines."""
    sizes = report["subsets"]["sizes"]
    table = Table(title="test metrics next to trivial baselines", title_justify="left")
    for column in ("head", "metric", "subset (n)", "value", "95% CI", *BASELINES):
        left = column in ("head", "metric", "subset (n)")
        table.add_column(column, justify="left" if left else "right")
    intervals = report["confidence_intervals"]["metrics"]
    for name, subset in report["subsets"]["metric_subset"].items():
        interval = intervals[name]
        _, head, metric = name.split("/")
        table.add_row(
            HEAD_TITLES[head],
            metric,
            f"{SUBSET_TITLES[subset]} ({sizes[subset]})",
            _number(report["metrics"][name]),
            ("n/a" if interval["low"] is None else f"{interval['low']:.3f}-{interval['high']:.3f}"),
            *(_number(report["baselines"][b]["metrics"][name]) for b in BASELINES),
        )
    return table


def per_criterion_table(report: dict[str, Any]) -> Table:
    table = Table(title="per criterion", title_justify="left")
    columns = ("criterion", "threshold", "precision", "recall", "f1", "auc", "AP", "support")
    for column in columns:
        table.add_column(column, justify="left" if column == "criterion" else "right")
    for name, row in report["per_criterion"].items():
        table.add_row(
            name,
            f"{row['threshold']:.3f}",
            *(
                _number(row.get(key))
                for key in ("precision", "recall", "f1", "auc", "average_precision")
            ),
            str(row["support"]),
        )
    return table
