"""`python -m dataaug_multi_both.cli.cleanup`: reclaim disk from studies and trials.

Exit codes: 0 success, 1 cleanup error (permission denied, I/O error), 2 study/trial
directory not found (or not allowed: `/`, a symlink loop).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataaug_multi_both.cli._common import command_parser, make_console, run_command
from dataaug_multi_both.cli._formats import plain
from dataaug_multi_both.errors import DataAugError

DEFAULT_ROOT = "experiments"


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "cleanup",
        description="Delete orphaned files and checkpoints that no policy keeps; never a running trial.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--study-dir", help="a study and its trials")
    scope.add_argument("--trial-dir", help="one trial")
    scope.add_argument(
        "--experiments-dir",
        help=f"every study and trial under this directory (default, without a scope: {DEFAULT_ROOT}/)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be deleted, change nothing"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--aggressive", action="store_true", help="keep only the best checkpoint of the best trial"
    )
    mode.add_argument(
        "--orphaned-only", action="store_true", help="only remove what nothing references"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (errors mapped by the cleanup contract)."""
    return run_command("cleanup", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from rich.table import Table

    from dataaug_multi_both.checkpointing.cleanup import (
        AGGRESSIVE,
        ORPHANED_ONLY,
        POLICY,
        CleanupPlan,
        execute,
        plan_trial,
    )
    from dataaug_multi_both.hpo.cleanup_scope import resolve_scope

    mode = AGGRESSIVE if args.aggressive else ORPHANED_ONLY if args.orphaned_only else POLICY

    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    if not (args.study_dir or args.trial_dir or args.experiments_dir):
        if not Path(DEFAULT_ROOT).is_dir():  # a fresh checkout: nothing was ever written
            make_console().print(f"nothing to clean: no {DEFAULT_ROOT}/ directory here")
            return 0
        args.experiments_dir = DEFAULT_ROOT

    scope = resolve_scope(
        path(args.study_dir), path(args.trial_dir), path(args.experiments_dir), args.aggressive
    )
    plan = CleanupPlan(actions=list(scope.extra))
    for trial in scope.trials:
        part = plan_trial(trial, mode)
        plan.actions += part.actions
        plan.preserved += part.preserved
        plan.skipped += part.skipped
        plan.problems += part.problems
    console = make_console()
    verb = "would" if args.dry_run else "will"
    table = Table(
        title=plain(f"cleanup of {scope.root} ({mode}{', dry run' if args.dry_run else ''})"),
        title_justify="left",
    )
    for column in ("action", "path", "MB", "reason"):
        table.add_column(column, justify="right" if column == "MB" else "left")
    for action in plan.actions:
        table.add_row(
            action.kind,
            plain(action.path.relative_to(scope.root)),
            f"{action.bytes / 1e6:.2f}",
            action.reason,
        )
    console.print(table if plan.actions else plain(f"nothing to clean in {scope.root}"))
    freed = plan.bytes_to_free if args.dry_run else execute(plan, scope.root)
    console.print(
        f"space {verb} be freed: {freed / 1e9:.3f} GB"
        if args.dry_run
        else f"space freed: {freed / 1e9:.3f} GB"
    )
    for kept in plan.preserved:
        console.print(plain(f"preserved: {kept.relative_to(scope.root)}"))
    for reason in plan.skipped:
        console.print(plain(f"skipped: {reason}"))
    if plan.problems:
        for problem in plan.problems:
            console.print(plain(f"not cleaned: {problem}"))
        raise DataAugError(f"{len(plan.problems)} trial(s) not cleaned: unreadable manifests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
