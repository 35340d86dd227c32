"""The Makefile's contract targets and the Docker entry point (no Docker engine is needed:
the image's entry point is a script, run here as the image runs it)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"


def make_n(target: str) -> str:
    """The commands `make TARGET` would run (from a shell in the checkout), one line each."""
    done = subprocess.run(
        ["make", "-n", "-s", target, "STAMP=/dev/null"],
        cwd=REPO,
        env={**os.environ, "PWD": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.replace("\\\n", " ")


def test_docker_run_is_the_contracts_command() -> None:
    command = " ".join(make_n("docker-run").split())
    assert command.startswith("docker run -it --rm --gpus all ")
    assert f'-v "{REPO}":/workspace dataaug-multi-both:latest' in command
    assert "-t dataaug-multi-both:latest" in make_n("docker-build")
    assert "--build-arg TORCH_INDEX=https://pypi.org/simple" in make_n("docker-build-cuda")


def test_make_test_runs_pytest_verbose_with_coverage() -> None:
    assert "-m pytest -v --cov=src/dataaug_multi_both" in make_n("test")


def stub_python(tmp_path: Path) -> tuple[Path, Path]:
    """A `python` that records the commands the entry point runs (and runs `-c` for real)."""
    calls = tmp_path / "calls.txt"
    stub = tmp_path / "python"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi\n'
        f'echo "$*" >> {calls}\n'
    )
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return stub, calls


def test_the_entry_point_without_arguments_runs_the_demo(tmp_path: Path) -> None:
    stub, calls = stub_python(tmp_path)
    env = {**os.environ, "PYTHON": str(stub)}
    done = subprocess.run([str(ENTRYPOINT)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    hpo, evaluate, listing = calls.read_text().splitlines()
    # no configs/ here (nothing mounted): the bundled hpo_demo.yaml
    assert hpo.startswith("-m dataaug_multi_both.cli.hpo --config ")
    assert Path(hpo.split()[3]).is_file() and hpo.split()[3].endswith("hpo_demo.yaml")
    assert evaluate == "-m dataaug_multi_both.cli.evaluate_study --study-dir experiments/study_demo"
    assert listing == "-m dataaug_multi_both.cli.list_studies"


def test_the_entry_point_runs_one_command_or_refuses_an_unknown_one(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    listing = subprocess.run(
        [str(ENTRYPOINT), "list_studies", "--experiments-dir", str(tmp_path), "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.strip() == "[]"
    unknown = subprocess.run(
        [str(ENTRYPOINT), "rm", "-rf", "/"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "unknown command 'rm'" in unknown.stderr
