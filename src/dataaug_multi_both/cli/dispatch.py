"""The console scripts: `dataaug <command> ...` and one `dataaug-<command>` per command.

Each runs the same `main()` as `python -m dataaug_multi_both.cli.<command>` (the contract's
form, unchanged): the same flags, messages and exit codes.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

from dataaug_multi_both.cli._common import exit_process, package_version

# the name on the command line -> the module under dataaug_multi_both.cli
COMMANDS = {
    "train": "train",
    "hpo": "hpo",
    "evaluate-study": "evaluate_study",
    "cleanup": "cleanup",
    "list-studies": "list_studies",
    "list-checkpoints": "list_checkpoints",
    "predict": "predict",
    "export": "export",
}


def command_module(name: str) -> str | None:
    """The module of a command named on the command line (`list-studies` or `list_studies`)."""
    return COMMANDS.get(name.replace("_", "-"))


def _run(module: str, argv: list[str]) -> NoReturn:
    command = importlib.import_module(f"dataaug_multi_both.cli.{module}")
    exit_process(command.main(argv))
    raise AssertionError("unreachable")  # exit_process exits


def overview() -> str:
    """`dataaug --help`: the commands with the first line of each one's description."""
    lines = [
        "usage: dataaug <command> [flags] [KEY=VALUE ...]",
        "",
        "commands:",
    ]
    for name, module in COMMANDS.items():
        parser = importlib.import_module(f"dataaug_multi_both.cli.{module}").build_parser()
        lines.append(f"  {name:<18}{(parser.description or '').splitlines()[0]}")
    lines += [
        "",
        "`dataaug <command> --help` shows a command's flags; `dataaug-<command>` and",
        "`python -m dataaug_multi_both.cli.<command>` are the same commands.",
        "--version prints the installed version.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> NoReturn:
    """`dataaug <command> ...`; an unknown command is exit 2 (a usage error)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(overview(), file=sys.stdout if args else sys.stderr)
        sys.exit(0 if args else 2)
    if args[0] == "--version":
        print(package_version())
        sys.exit(0)
    module = command_module(args[0])
    if module is None:
        print(
            f"dataaug: unknown command {args[0]!r} (commands: {', '.join(COMMANDS)})",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.argv[0] = f"dataaug {args[0]}"  # what the command's usage line calls itself
    _run(module, args[1:])


def train() -> NoReturn:
    _run("train", sys.argv[1:])


def hpo() -> NoReturn:
    _run("hpo", sys.argv[1:])


def evaluate_study() -> NoReturn:
    _run("evaluate_study", sys.argv[1:])


def cleanup() -> NoReturn:
    _run("cleanup", sys.argv[1:])


def list_studies() -> NoReturn:
    _run("list_studies", sys.argv[1:])


def list_checkpoints() -> NoReturn:
    _run("list_checkpoints", sys.argv[1:])


def predict() -> NoReturn:
    _run("predict", sys.argv[1:])


def export() -> NoReturn:
    _run("export", sys.argv[1:])


if __name__ == "__main__":
    main()
