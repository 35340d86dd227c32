"""`python -m dataaug_multi_both.cli.predict`: a trained model on new posts.

Exit codes: 0 success; 1 inference failure; 2 bad flags, or an input without a `text`
column; 3 a missing or unreadable input, a model source that does not exist or fails its
SHA256 check; 4 the output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataaug_multi_both.cli._common import add_model_source, command_parser, run_command
from dataaug_multi_both.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "predict",
        description="Predict the nine criteria and their evidence for new posts.",
    )
    add_model_source(parser, exports=True)
    parser.add_argument(
        "--input",
        required=True,
        help="CSV, JSONL or Parquet with a text column (post_id optional), or - for JSON "
        "lines on stdin",
    )
    parser.add_argument("--output", help="output file (default stdout)")
    parser.add_argument("--format", choices=("jsonl", "csv", "html"), default="jsonl")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--threshold",
        type=float,
        help="decision threshold for every criterion (default: the "
        "one stored with the model, chosen on validation data)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code."""
    return run_command("predict", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise ConfigError(f"--threshold must lie in (0, 1), not {args.threshold}")
    import torch

    from dataaug_multi_both.serving.model_source import load_model
    from dataaug_multi_both.serving.posts import input_format
    from dataaug_multi_both.serving.prediction_run import run_prediction
    from dataaug_multi_both.training.distributed import torch_device

    input_format(args.input)  # a bad suffix is exit 2 before the model loads
    try:
        device = torch_device("auto") if args.device == "auto" else torch.device(args.device)
    except RuntimeError:
        raise ConfigError(
            f"--device {args.device!r} is not a device (auto, cpu, cuda, cuda:N)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: no CUDA device here (use --device cpu or auto)")
    loaded = load_model(
        Path(args.checkpoint) if args.checkpoint else None,
        Path(args.study_dir) if args.study_dir else None,
        Path(args.model_dir) if args.model_dir else None,
    )
    summary = run_prediction(
        loaded,
        args.input,
        Path(args.output) if args.output else None,
        args.format,
        device,
        args.batch_size,
        args.threshold,
        show_progress=sys.stderr.isatty() or args.output is not None,
    )
    print(
        f"predicted {summary.posts} posts in {summary.seconds:.1f}s "
        f"({summary.posts / max(summary.seconds, 1e-9):.1f} posts/s) with {loaded.source}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
