"""`python -m dataaug_multi_both.cli.list_studies`: the studies of an experiments directory.

Exit codes: 0 success, 1 the experiments directory does not exist (or cannot be read).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataaug_multi_both.cli._common import command_parser, run_command
from dataaug_multi_both.cli._formats import FORMATS, Column, render_csv, render_json, render_table
from dataaug_multi_both.errors import DataAugError

STATUSES = ("completed", "in_progress", "failed")
KEYS = (
    "study_id",
    "name",
    "trials",
    "best_metric",
    "status",
    "created",
    "requested_trials",
    "optimization_metric",
    "pruned",
    "failed",
    "running",
    "storage",
    "study_dir",
)


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("list_studies", description="List the HPO studies.")
    parser.add_argument("--experiments-dir", default="experiments")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--filter-status", choices=STATUSES)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (errors mapped by the list_studies contract)."""
    return run_command("list_studies", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from dataaug_multi_both.hpo.inventory import study_rows

    root = Path(args.experiments_dir)
    if not root.is_dir():
        raise DataAugError(f"experiments directory not found: {args.experiments_dir}")
    rows = [r for r in study_rows(root) if args.filter_status in (None, r["status"])]
    if args.format == "json":
        print(render_json([{k: r[k] for k in KEYS} for r in rows]))
    elif args.format == "csv":
        print(render_csv(rows, KEYS), end="")
    else:
        columns = [
            Column("study_id", "Study ID"),
            Column("name", "Name"),
            Column("trials", "Trials", "right"),
            Column("best_metric", "Best Metric", "right"),
            Column("status", "Status"),
            Column("created", "Created", as_date=True),
        ]
        Console(highlight=False, width=max(Console().width, 120)).print(
            render_table(rows, columns, title=f"studies in {root}")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
