"""What `evaluate_study` prints: plain renderings of `evaluation_report.json` (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from dataaug_multi_both.training.baselines import BASELINES

HEAD_TITLES = {"criteria_matcher": "criteria matcher", "evidence_binder": "evidence binder"}
SUBSET_TITLES = {
    "posts": "posts",
    "pairs": "pairs",
    "positive_pairs": "pos",
    "negative_pairs": "neg",
}
BASELINE_TITLES = {"all_absent": "absent", "all_present": "present", "train_rate": "rate"}


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
    """One row per headline metric: the subset it is computed on and its size, the value,
    its interval, and the three baselines (fits 80 columns)."""
    sizes = report["subsets"]["sizes"]
    split = report["test_split"]["key"]
    table = Table(
        title=f"{split} metrics next to trivial baselines (pos/neg: positive/negative pairs)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("metric")
    table.add_column("on", no_wrap=True)
    for column in ("value", "95% CI", *BASELINE_TITLES.values()):
        table.add_column(column, justify="right", no_wrap=True)
    intervals = report["confidence_intervals"]["metrics"]
    head = None
    for name, subset in report["subsets"]["metric_subset"].items():
        _, group, metric = name.split("/")
        if group != head:
            if head is not None:
                table.add_section()
            table.add_row(f"[bold]{HEAD_TITLES[group]}[/bold]")
            head = group
        interval = intervals[name]
        table.add_row(
            f"  {metric}",
            f"{SUBSET_TITLES[subset]} {sizes[subset]}",
            _number(report["metrics"][name]),
            ("n/a" if interval["low"] is None else f"{interval['low']:.3f}-{interval['high']:.3f}"),
            *(_number(report["baselines"][b]["metrics"][name]) for b in BASELINES),
        )
    return table


def per_criterion_table(report: dict[str, Any]) -> Table:
    table = Table(title="per criterion", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ("criterion", "threshold", "precision", "recall", "f1", "auc", "AP", "support")
    for column in columns:
        justify = "left" if column == "criterion" else "right"
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
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
