"""`python -m dataaug_multi_both.cli.train`: one training run of the dual-head model.

Exit codes: 0 success, 1 training error, 2 configuration error, 3 data/model loading
error, 4 storage error, 5 tracking error.

Under `torchrun --nproc_per_node N -m dataaug_multi_both.cli.train ...` every process runs
this module; they form one data-parallel job (see docs/distributed.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dataaug_multi_both.cli._common import (
    add_preview_flags,
    announce_config_file,
    command_parser,
    exit_process,
    make_console,
    print_config,
    run_command,
    split_overrides,
)
from dataaug_multi_both.config.compose import load_train_config, tracking_note
from dataaug_multi_both.metric_names import resolve_metric_name, short_metric_title


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "train",
        description="Fine-tune a transformer encoder with a criteria matcher and an evidence binder head.",
        epilog="Trailing KEY=VALUE arguments are Hydra overrides, e.g. trainer.batch_size=8. "
        "Set DATAAUG_DEBUG=1 to see tracebacks of expected errors.",
    )
    parser.add_argument(
        "--config", help="YAML config (default configs/train.yaml, else the bundled copy)"
    )
    parser.add_argument(
        "--model", help="model alias, Hugging Face id or local directory (model.model_id)"
    )
    parser.add_argument(
        "--dataset", help="'synthetic', a local directory, or a Hugging Face dataset id"
    )
    parser.add_argument("--optimization-metric", help="e.g. val_f1 or val/criteria_matcher/f1")
    parser.add_argument(
        "--max-epochs", type=int, help="number of epochs (default 10, from the config)"
    )
    parser.add_argument(
        "--checkpoint-dir", help="where checkpoints go (default {trial_dir}/checkpoints)"
    )
    parser.add_argument(
        "--resume-from",
        help="checkpoint file to resume from (a trial directory or its checkpoints/: its latest "
        "resume checkpoint); without --config the trial's own config.yaml is "
        "used, except where credentials go (tracking URI, Vault): those are always yours",
    )
    parser.add_argument(
        "--seed", type=int, help="seed for every seed not set in the config (default 42)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="skip checkpointing, only log metrics"
    )
    add_preview_flags(parser, validate_only=True)
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides KEY=VALUE")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (errors mapped by the train contract)."""
    return run_command("train", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_intermixed_args(argv)  # overrides may sit between flags
    from rich.console import Console

    from dataaug_multi_both.training.distributed import from_environment
    from dataaug_multi_both.training.launch import run_training
    from dataaug_multi_both.training.run_options import RunOptions
    from dataaug_multi_both.training.run_state import (
        experiments_root,
        resume_config_path,
        resume_target,
    )

    metric = resolve_metric_name(args.optimization_metric) if args.optimization_metric else None
    resume_from = resume_target(Path(args.resume_from)) if args.resume_from else None
    overrides = split_overrides(args.overrides)
    artifact = None
    if resume_from is not None and args.config is None:  # continue with the trial's own config
        artifact = resume_config_path(resume_from, experiments_root(overrides))
    announce_config_file(args.config, "train.yaml")
    config = load_train_config(
        args.config,
        overrides,
        {
            "model.model_id": args.model,
            "dataset.dataset_id": args.dataset,
            "trainer.optimization_metric": metric,
            "trainer.max_epochs": args.max_epochs,
        },
        seed=args.seed,
        artifact=artifact,
    )
    if args.print_config:
        print_config(config.to_dict())
        return 0
    dist = from_environment()  # under torchrun: this rank; else a single process
    console = make_console() if dist.is_main else Console(quiet=True)
    if artifact is not None and (note := tracking_note(artifact, config.to_dict())):
        console.print(note, highlight=False)
    if args.validate_only:
        from dataaug_multi_both.training.preflight import preflight

        for line in preflight(config, dist).lines():
            console.print(line, highlight=False)
        return 0
    options = RunOptions(
        dry_run=args.dry_run,
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
        resume_from=resume_from,
        console=console,
        dist=dist,
    )
    result = run_training(config, options)
    console.print(
        f"best {short_metric_title(result.metric_name)} {result.best_value:.4f} at epoch "
        f"{result.best_epoch}; outputs in {result.trial_dir}"
    )
    return 0


if __name__ == "__main__":
    exit_process(main())
