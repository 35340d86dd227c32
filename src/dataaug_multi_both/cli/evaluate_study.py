"""`python -m dataaug_multi_both.cli.evaluate_study`: the best trial of a study on its test split.

Exit codes: 0 success, 1 evaluation error (model loading, inference failure), 2 study not
found or no complete trial, 3 best trial checkpoint not found (or none verifies), 4 test
dataset loading error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dataaug_multi_both.cli._common import command_parser, exit_process, make_console, run_command
from dataaug_multi_both.hpo.evaluate import StudyNotFoundError


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "evaluate_study",
        description="Evaluate a study's best trial on the test split of the study's split manifest.",
    )
    parser.add_argument("--study-dir", required=True, help="experiments/study_{id}")
    parser.add_argument(
        "--output-path",
        help="report file, or a directory to write evaluation_report.json into (default the "
        "study directory); its two PNG plots go next to it as <name>_precision_recall.png "
        "and <name>_reliability.png",
    )
    parser.add_argument("--test-split", default="test", help="split to evaluate on (default test)")
    return parser


REPORT_NAME = "evaluation_report.json"


def report_path(given: str | None, study_dir: Path) -> Path:
    """--output-path as a file; a directory (existing, or written with a trailing /) gets
    evaluation_report.json inside it."""
    if not given:
        return study_dir / REPORT_NAME
    path = Path(given)
    return path / REPORT_NAME if given.endswith(("/", "\\")) or path.is_dir() else path


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (errors mapped by the evaluate_study contract)."""
    return run_command("evaluate_study", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from dataaug_multi_both.hpo.evaluate import evaluate_study
    from dataaug_multi_both.hpo.evaluation_tables import (
        headline_table,
        per_criterion_table,
        summary_lines,
    )
    from dataaug_multi_both.training.distributed import from_environment

    study_dir = Path(args.study_dir).resolve()
    if not study_dir.is_dir():
        raise StudyNotFoundError(f"study directory not found: {args.study_dir}")
    output = report_path(args.output_path, study_dir)
    dist = from_environment()  # under torchrun the ranks share the inference
    console = make_console() if dist.is_main else Console(quiet=True)
    report = evaluate_study(study_dir, output, args.test_split, console, dist)
    if not dist.is_main:
        return 0
    for line in summary_lines(report):
        console.print(line, highlight=False)
    console.print(headline_table(report))
    console.print(per_criterion_table(report))
    for note in report["notes"]:
        console.print(f"note: {note}", highlight=False)
    for plot in report["plots"]:
        console.print(f"plot: {plot}", highlight=False)
    console.print(f"report: {output}")
    return 0


if __name__ == "__main__":
    exit_process(main())
