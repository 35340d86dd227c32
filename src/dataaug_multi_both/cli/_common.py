"""Shared by every command: one place that maps exceptions to exit codes and messages.

Expected errors (`DataAugError`) print one line on stderr and exit with their code; set
DATAAUG_DEBUG=1 to see the traceback too. Anything else is a bug: traceback, exit 1.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Mapping

from rich.console import Console

from dataaug_multi_both.errors import DataAugError, Interrupted


def make_console() -> Console:
    """stdout console; in a log file (not a terminal) lines are 120 wide instead of 80."""
    probe = Console()
    return Console(highlight=False, width=None if probe.is_terminal else max(probe.width, 120))


def debug_enabled() -> bool:
    return os.environ.get("DATAAUG_DEBUG", "").lower() in ("1", "true", "yes")


def run_command(main: Callable[[], int], exit_codes: Mapping[type, int] | None = None) -> None:
    """Run `main` and exit with its code; `exit_codes` remaps error classes for commands
    whose contract numbers failures differently (most specific class first)."""
    try:
        code = main()
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = Interrupted.exit_code
    except DataAugError as exc:
        if debug_enabled():
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr)
        code = next(
            (c for cls, c in (exit_codes or {}).items() if isinstance(exc, cls)), exc.exit_code
        )
    sys.stdout.flush()
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
