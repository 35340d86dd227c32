"""`python -m dataaug_multi_both.cli.list_checkpoints`: the checkpoints of one trial.

Exit codes: 0 success, 1 trial directory or manifest not found / unreadable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataaug_multi_both.cli._common import command_parser, run_command
from dataaug_multi_both.cli._formats import (
    FORMATS,
    Column,
    metric_header,
    render_csv,
    render_json,
    render_table,
)
from dataaug_multi_both.layout import trial_name

JSON_KEYS = (
    "checkpoint",
    "path",
    "epoch",
    "step",
    "metric",
    "metric_value",
    "is_best",
    "is_latest",
    "retained",
    "kind",
    "size_mb",
    "sha256",
)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "list_checkpoints",
        description="List the checkpoints recorded in a trial's manifest.",
    )
    parser.add_argument(
        "--trial-dir", required=True, help="experiments/trial_{id} (or its checkpoints/ folder)"
    )
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--show-metrics", action="store_true", help="add every epoch metric")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (errors mapped by the list_checkpoints contract)."""
    return run_command("list_checkpoints", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from dataaug_multi_both.checkpointing.inventory import checkpoint_rows
    from dataaug_multi_both.metric_names import short_metric_title

    listing = checkpoint_rows(Path(args.trial_dir), with_metrics=args.show_metrics)
    for warning in listing.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    keys = list(JSON_KEYS) + (["metrics"] if args.show_metrics else [])
    if args.format == "json":
        print(render_json([{k: r.get(k) for k in keys} for r in listing.rows]))
    elif args.format == "csv":
        print(render_csv(listing.rows, keys), end="")
    else:
        columns = [
            Column("checkpoint", "Checkpoint"),
            Column("epoch", "Epoch", "right"),
            Column("step", "Step", "right"),
            Column("metric_value", short_metric_title(listing.metric), "right"),
            Column("is_best", "Is Best"),
            Column("is_latest", "Is Latest"),
            Column("retained", "Retained"),
            Column("kind", "Kind"),  # resume, weights-only, or mid-epoch (batch N)
            Column("size_mb", "Size (MB)", "right", ".2f"),
        ]
        if args.show_metrics:
            columns += [
                Column(f"metrics.{n}", metric_header(n), "right", ".3f")
                for n in listing.metric_names
            ]
        rows = [
            {**r, **{f"metrics.{k}": v for k, v in (r.get("metrics") or {}).items()}}
            for r in listing.rows
        ]
        console = Console(highlight=False, width=max(Console().width, 100 + 12 * len(columns)))
        console.print(
            render_table(
                rows, columns, title=f"{trial_name(listing.trial_id)}: {listing.directory}"
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
