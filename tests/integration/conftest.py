from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    command: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600
) -> Completed:
    """Run `python -m dataaug_multi_both.cli.<command> args...` as a real subprocess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", f"dataaug_multi_both.cli.{command}", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def only_trial_dir(experiments: Path) -> Path:
    dirs = sorted(p for p in experiments.iterdir() if p.name.startswith("trial_"))
    assert len(dirs) == 1, dirs
    return dirs[0]


TINY = ["--model", "tiny-bert", "--dataset", "synthetic"]
SMALL_DATA = ["dataset.synthetic_num_posts=60", "dataset.max_length=96", "dataset.doc_stride=16"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
