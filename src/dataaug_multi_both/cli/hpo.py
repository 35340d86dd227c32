"""`python -m dataaug_multi_both.cli.hpo`: an Optuna study of training runs.

Exit codes: 0 all trials completed (pruned counts as completed), 1 some trials failed,
2 configuration error, 3 study creation error (storage unreachable, unknown study on
resume, data not loadable), 4 storage exhaustion, 5 MLflow unreachable.
"""

from __future__ import annotations

import argparse
import sys
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
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.layout import StudyPaths


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "hpo",
        description="Hyperparameter search over training runs, with a study-wide storage budget.",
        epilog="Trailing KEY=VALUE arguments are Hydra overrides (study.num_trials=20, trainer.max_epochs=3).",
    )
    parser.add_argument(
        "--study-name", help="study name (default: generated); workers with the same name join"
    )
    parser.add_argument(
        "--config", help="YAML config (default configs/hpo.yaml, else the bundled copy)"
    )
    parser.add_argument("--num-trials", type=int, help="finished trials to reach (default 100)")
    parser.add_argument("--optimization-metric", help="e.g. val_f1 or val/criteria_matcher/f1")
    parser.add_argument("--direction", help="maximize (the only direction)")
    parser.add_argument("--study-dir", help="study directory (default experiments/study_{id})")
    parser.add_argument(
        "--resume-study", metavar="STUDY_ID", help="study id (with or without study_) or name"
    )
    parser.add_argument(
        "--seed", type=int, help="sampler seed and every unset training seed (default 42)"
    )
    add_preview_flags(parser, validate_only=False)
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides KEY=VALUE")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit code (errors mapped by the hpo contract)."""
    return run_command("hpo", _run, argv)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    from rich.console import Console

    from dataaug_multi_both.config.compose import tracking_note
    from dataaug_multi_both.hpo.config import load_hpo_config
    from dataaug_multi_both.hpo.identity import StudyOptions, locate_study
    from dataaug_multi_both.hpo.model_check import require_loadable_models
    from dataaug_multi_both.hpo.runner import run_study
    from dataaug_multi_both.hpo.storage import storage_env_note
    from dataaug_multi_both.metric_names import resolve_metric_name
    from dataaug_multi_both.training.distributed import from_environment

    if args.direction is not None and args.direction != "maximize":
        raise ConfigError(
            f"--direction {args.direction!r} is not supported: studies maximize the optimization "
            "metric; to minimise the validation loss, name it (--optimization-metric val_loss: "
            "a loss is maximised as its negative)"
        )
    if args.num_trials is not None and args.num_trials < 1:
        raise ConfigError(f"--num-trials must be >= 1, got {args.num_trials}")
    overrides = split_overrides(args.overrides)
    study_dir = Path(args.study_dir).resolve() if args.study_dir else None
    if study_dir is not None and study_dir.exists() and not study_dir.is_dir():
        raise ConfigError(f"--study-dir {args.study_dir} is a file, not a directory")
    artifact = None
    if args.resume_study:
        study_dir = locate_study(args.resume_study, overrides, study_dir)
        if args.config is None:  # continue with the study's own config (tracking: the user's)
            artifact = StudyPaths(study_dir).config
    announce_config_file(args.config, "hpo.yaml")
    hpo = load_hpo_config(
        args.config,
        overrides,
        {
            "num_trials": args.num_trials,
            "optimization_metric": (
                resolve_metric_name(args.optimization_metric) if args.optimization_metric else None
            ),
        },
        seed=args.seed,
        artifact=artifact,
    )
    if args.print_config:
        print_config(hpo.to_dict())
        if note := storage_env_note():  # stdout stays plain YAML
            print(note, file=sys.stderr)
        return 0
    require_loadable_models(hpo)  # before any trial: Hub models offline fail every trial
    dist = from_environment()  # under torchrun each trial is a data-parallel job
    console = make_console() if dist.is_main else Console(quiet=True)
    if artifact is not None and (note := tracking_note(artifact, hpo.train.to_dict())):
        console.print(note, highlight=False)
    result = run_study(
        hpo, StudyOptions(args.study_name, study_dir, args.resume_study, console, dist)
    )
    if result.error is not None and dist.is_main:
        raise result.error  # after the summary: one line, its code, a traceback on request
    return result.exit_code


if __name__ == "__main__":
    exit_process(main())
