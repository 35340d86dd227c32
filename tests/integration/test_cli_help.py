"""A CLI that helps (issue 19): console scripts, --version, did-you-mean for unknown keys,
search-space entries from the command line, --print-config, --validate-only, the notice
when ./configs shadows the bundled file, dataset paths, the local Hub cache offline, a
doc_stride that follows max_length, and the offline check of the study's models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import HPO_SMALL, TINY, TINY_STUDY, Completed, read_jsonl, run_cli

pytestmark = pytest.mark.integration

COMMANDS = [
    "train",
    "hpo",
    "evaluate-study",
    "cleanup",
    "list-studies",
    "list-checkpoints",
    "predict",
    "export",
]


def script(name: str) -> str:
    """A console script installed next to this interpreter (`pip install -e .`)."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.skip(f"{name} is not installed: run `pip install -e .`")
    return str(path)


def run_script(name: str, *args: str, cwd: Path) -> Completed:
    proc = subprocess.run(
        [script(name), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def test_every_console_script_prints_the_installed_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    expected = f"dataaug-multi-both {version('dataaug-multi-both')}"
    for name in ["dataaug", *(f"dataaug-{c}" for c in COMMANDS)]:
        result = run_script(name, "--version", cwd=tmp_path)
        assert (result.returncode, result.stdout.strip()) == (0, expected), name


def test_the_dispatcher_lists_and_runs_the_commands(tmp_path: Path) -> None:
    listing = run_script("dataaug", "--help", cwd=tmp_path)
    assert listing.returncode == 0
    for command in COMMANDS:
        assert f"\n  {command} " in listing.stdout
    help_text = run_script("dataaug", "list-studies", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and help_text.stdout.startswith("usage: dataaug list-studies")
    (tmp_path / "experiments").mkdir()
    listed = run_script("dataaug", "list-studies", "--format", "json", cwd=tmp_path)
    assert (listed.returncode, listed.stdout.strip()) == (0, "[]")
    unknown = run_script("dataaug", "trian", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr


def test_the_contract_module_form_keeps_its_name(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dataaug_multi_both.cli.train", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m dataaug_multi_both.cli.train")
    assert "--version" in proc.stdout


def test_unknown_override_suggests_the_key_meant(tmp_path: Path) -> None:
    result = run_cli("train", *TINY, "trainer.lr=1e-4", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unknown configuration key trainer.lr (did you mean trainer.learning_rate?)"
    )
    config = tmp_path / "mine.yaml"
    config.write_text("defaults:\n  - train\n  - _self_\ntrainer:\n  lr: 0.001\n")
    in_file = run_cli("train", "--config", str(config), *TINY, cwd=tmp_path)
    assert in_file.returncode == 2 and "did you mean trainer.learning_rate?" in in_file.stderr
    hpo = run_cli("hpo", "study.num_trails=3", cwd=tmp_path)
    assert hpo.returncode == 2 and "did you mean study.num_trials?" in hpo.stderr
    assert not (tmp_path / "experiments").exists()


def test_search_space_entry_from_the_command_line(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "1",
        *TINY_STUDY,
        "tracking.backend=none",
        "+search_space.trainer.weight_decay={type: uniform, low: 0.0, high: 0.1}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (study_dir,) = (tmp_path / "experiments").glob("study_*")
    (end,) = [e for e in read_jsonl(study_dir / "logs" / "hpo.jsonl") if e["event"] == "trial_end"]
    assert 0.0 <= end["params"]["trainer.weight_decay"] <= 0.1
    trial_config = yaml.safe_load(
        (tmp_path / "experiments" / end["trial_id"] / "config.yaml").read_text()
    )
    assert trial_config["trainer"]["weight_decay"] == end["params"]["trainer.weight_decay"]
    without_plus = run_cli(
        "hpo", "search_space.trainer.weight_decay={type: uniform, low: 0, high: 1}", cwd=tmp_path
    )
    assert without_plus.returncode == 2 and "needs a leading +" in without_plus.stderr
