"""`python -m dataaug_multi_both.cli.export`: the best model of a study (or any checkpoint)
as a self-contained directory that loads offline with `from_pretrained`.

Exit codes: 0 success; 2 bad flags, or --output exists and is not an empty directory; 3 a
model source that does not exist or fails its SHA256 check; 4 the directory cannot be
written; 5 MLflow (with --mlflow) cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataaug_multi_both.cli._common import add_model_source, command_parser, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "export",
        description="Export a trained model as a self-contained, shareable directory.",
    )
    add_model_source(parser, exports=False)
    parser.add_argument("--output", required=True, help="the directory to write (new or empty)")
    parser.add_argument(
        "--mlflow", action="store_true", help="log the directory as an artifact of the trial's run"
    )
    parser.add_argument(
        "--register",
        metavar="NAME",
        help="and register it in MLflow's model registry (implies --mlflow)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code."""
    return run_command("export", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from dataaug_multi_both.serving.export import export_model, log_export
    from dataaug_multi_both.serving.model_source import load_model

    loaded = load_model(
        Path(args.checkpoint) if args.checkpoint else None,
        Path(args.study_dir) if args.study_dir else None,
        None,
    )
    output = Path(args.output)
    size = export_model(loaded, output)
    source = Path(args.checkpoint) if args.checkpoint else None
    against = f" (checkpoint {source.stat().st_size / 1e6:.1f} MB)" if source else ""
    print(f"exported {loaded.source} to {output}: {size / 1e6:.1f} MB{against}")
    if args.mlflow or args.register:
        print(log_export(loaded, output, args.register))
    return 0


if __name__ == "__main__":
    sys.exit(main())
