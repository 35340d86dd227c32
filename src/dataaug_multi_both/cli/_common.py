"""Shared by every command: one place that maps exceptions to exit codes and messages.

Expected errors (`DataAugError`) print one line on stderr and exit with their code; set
DATAAUG_DEBUG=1 to see the traceback too. Anything else is a bug: traceback, exit 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from rich.console import Console

from dataaug_multi_both.errors import DataAugError, Interrupted, exit_code_for
from dataaug_multi_both.training.interrupt import interrupt_signal, sigterm_interrupts

PACKAGE = "dataaug-multi-both"


def package_version() -> str:
    """`dataaug-multi-both 0.1.0`: the installed distribution's version (its metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{PACKAGE} {version(PACKAGE)}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return f"{PACKAGE} (version unknown: not installed)"


def program_name(command: str, argv0: str | None = None) -> str:
    """What the usage line calls a command: the console script that started it
    (`dataaug-train`, or `dataaug train` through the dispatcher), else the contract's
    `python -m dataaug_multi_both.cli.<command>`."""
    started_as = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if started_as.startswith("dataaug"):
        return started_as
    return f"python -m dataaug_multi_both.cli.{command}"


def command_parser(command: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A command's argument parser: its program name and `--version`."""
    parser = argparse.ArgumentParser(prog=program_name(command), **kwargs)
    parser.add_argument("--version", action="version", version=package_version())
    return parser


def make_console() -> Console:
    """stdout console; in a log file (not a terminal) lines are 120 wide instead of 80."""
    probe = Console()
    return Console(highlight=False, width=None if probe.is_terminal else max(probe.width, 120))


def debug_enabled() -> bool:
    return os.environ.get("DATAAUG_DEBUG", "").lower() in ("1", "true", "yes")


def run_command(
    command: str, body: Callable[[list[str] | None], int], argv: list[str] | None
) -> int:
    """Run a command's body and return its exit code: an expected error prints one line on
    stderr (the traceback too with DATAAUG_DEBUG=1) and exits with the code the command's
    contract gives it (`errors.EXIT_CODES`), also when `main()` is called in-process."""
    with sigterm_interrupts():  # SIGTERM stops as cleanly as Ctrl-C does (exit 143)
        try:
            return body(argv)
        except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except KeyboardInterrupt as exc:
            signum = interrupt_signal(exc)
            message = f"interrupted by {signal.Signals(signum).name}"
            print(f"error: {message}", file=sys.stderr)
            return exit_code_for(command, Interrupted(message, signum))
        except DataAugError as exc:
            if debug_enabled():
                traceback.print_exc()
            print(f"error: {exc.message}", file=sys.stderr)
            return exit_code_for(command, exc)
        finally:
            sys.stdout.flush()


def exit_process(code: int) -> None:
    """Exit with `code`. Under torchrun, once everything is flushed, without running the
    interpreter's teardown: PyTorch's distributed objects can abort a finished rank while
    they are destroyed ("terminate called without an active exception", exit -6), which
    torchrun then reports as a failed job although the command succeeded."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def split_overrides(values: list[str]) -> list[str]:
    """Trailing Hydra-style overrides must look like key=value (or +key=value / ~key)."""
    from dataaug_multi_both.errors import ConfigError

    for value in values:
        if "=" not in value and not value.startswith("~"):
            raise ConfigError(
                f"unrecognised argument {value!r}: overrides look like trainer.batch_size=8"
            )
    return values


def add_model_source(parser: argparse.ArgumentParser, exports: bool) -> None:
    """The model-source flags of `predict` and `export`: exactly one of them."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--study-dir", help="a study: its best trial's best verified checkpoint")
    source.add_argument("--checkpoint", help="a checkpoint file (weights-only or resume)")
    if exports:
        source.add_argument("--model-dir", help="a directory written by the export command")


def add_preview_flags(parser: argparse.ArgumentParser, validate_only: bool) -> None:
    """`--print-config` (and for train `--validate-only`): look before running."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved configuration (passwords as ***) and exit",
    )
    if validate_only:
        group.add_argument(
            "--validate-only",
            action="store_true",
            help="load the config, data, tokenizer and model, print a summary and exit "
            "(no training, no trial directory, no MLflow run)",
        )


def print_config(config: dict[str, Any]) -> None:
    """A resolved configuration as YAML on stdout, secrets masked (`config.public`)."""
    import yaml

    from dataaug_multi_both.config.public import public_config

    print(yaml.safe_dump(public_config(config), sort_keys=False), end="")


def announce_config_file(config: str | None, default_name: str) -> None:
    """One line on stderr when ./configs/<default_name> replaces the bundled file."""
    from dataaug_multi_both.config.compose import shadowing_note

    note = shadowing_note(config, default_name)
    if note is not None:
        print(note, file=sys.stderr)
