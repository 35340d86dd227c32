from __future__ import annotations

import pytest

from dataaug_multi_both.cli._common import command_parser, package_version, program_name
from dataaug_multi_both.cli.dispatch import COMMANDS, command_module, main


def test_program_name_is_the_script_that_started_the_command() -> None:
    assert program_name("train", "/venv/bin/dataaug-train") == "dataaug-train"
    assert program_name("train", "dataaug train") == "dataaug train"
    assert (
        program_name("train", "/src/dataaug_multi_both/cli/train.py")
        == "python -m dataaug_multi_both.cli.train"
    )
    assert program_name("hpo", "-c") == "python -m dataaug_multi_both.cli.hpo"


def test_commands_are_found_with_dashes_or_underscores() -> None:
    assert command_module("list-studies") == command_module("list_studies") == "list_studies"
    assert command_module("evaluate-study") == "evaluate_study"
    assert command_module("trian") is None
    assert set(COMMANDS.values()) == {
        "train",
        "hpo",
        "evaluate_study",
        "cleanup",
        "list_studies",
        "list_checkpoints",
        "predict",
        "export",
    }


def test_version_flag_exits_0_with_the_package_version(capsys: pytest.CaptureFixture) -> None:
    parser = command_parser("train")
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == package_version()
    assert package_version().startswith("dataaug-multi-both ")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["trian"])
    assert stopped.value.code == 2
    assert "unknown command 'trian'" in capsys.readouterr().err
