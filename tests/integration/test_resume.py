"""Exact resume, for real: straight runs vs. runs stopped by SIGTERM / killed by SIGKILL
and resumed with --resume-from. On CPU the results must be bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.integration.conftest import TINY, read_jsonl, run_cli

pytestmark = pytest.mark.integration

ARGS = [
    *TINY,
    "--max-epochs",
    "4",
    "dataset.synthetic_num_posts=40",
    "dataset.max_length=80",
    "dataset.doc_stride=16",
    "trainer.learning_rate=1e-3",
    "trainer.num_threads=1",
]


def epoch_metrics(trial: Path) -> dict[int, dict[str, Any]]:
    records = [r for r in read_jsonl(trial / "logs" / "train.jsonl") if r["event"] == "epoch_end"]
    epochs = [r["epoch"] for r in records]
    assert len(epochs) == len(set(epochs)), f"duplicate epoch records: {epochs}"
    return {
        r["epoch"]: {k: v for k, v in r["metrics"].items() if not k.startswith("system/")}
        for r in records
    }


def final_weights(trial: Path) -> dict[str, torch.Tensor]:
    return torch.load(trial / "checkpoints" / "epoch_004.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("straight")
    result = run_cli("train", *ARGS, "output.trial_id=straight", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "experiments" / "trial_straight"


def start_and_signal_after_epoch(
    workdir: Path, trial_id: str, sig: int, epoch: int
) -> subprocess.CompletedProcess:
    """Start `train`, wait until epoch `epoch` is in the manifest, then send `sig`."""
    manifest = workdir / "experiments" / f"trial_{trial_id}" / "checkpoints" / "manifest.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dataaug_multi_both.cli.train",
            *ARGS,
            f"output.trial_id={trial_id}",
        ],
        cwd=workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if manifest.is_file() and any(
            r["epoch"] == epoch for r in json.loads(manifest.read_text())["records"]
        ):
            break
        time.sleep(0.05)
    time.sleep(0.5)  # into the next epoch
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def assert_identical(straight: Path, resumed: Path) -> None:
    assert epoch_metrics(resumed) == epoch_metrics(straight)
    a, b = final_weights(straight), final_weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_sigterm_stops_safely_and_resume_is_bit_identical(straight: Path, tmp_path: Path) -> None:
    stopped = start_and_signal_after_epoch(tmp_path, "term", signal.SIGTERM, epoch=2)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "interrupted by SIGTERM" in stopped.stderr and "--resume-from" in stopped.stderr
    trial = tmp_path / "experiments" / "trial_term"
    checkpoint = stopped.stderr.split("--resume-from ")[1].split()[0]
    resumed = run_cli("train", "--resume-from", checkpoint, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_identical(straight, trial)
    events = read_jsonl(trial / "logs" / "train.jsonl")
    assert [e["event"] for e in events].count("resume") == 1


def test_sigkill_during_epoch_3_then_resume_is_bit_identical(
    straight: Path, tmp_path: Path
) -> None:
    killed = start_and_signal_after_epoch(tmp_path, "kill", signal.SIGKILL, epoch=2)
    assert killed.returncode == -signal.SIGKILL
    trial = tmp_path / "experiments" / "trial_kill"
    resumed = run_cli(
        "train", "--resume-from", str(trial / "checkpoints" / "epoch_002.pt"), cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_identical(straight, trial)
    manifest = json.loads((trial / "checkpoints" / "manifest.json").read_text())
    assert sorted({r["epoch"] for r in manifest["records"]}) == [1, 2, 3, 4]
    on_disk = sorted(p.name for p in (trial / "checkpoints").glob("*.pt"))
    assert len(on_disk) <= 2 and "epoch_004.pt" in on_disk
    assert not [p for p in (trial / "checkpoints").iterdir() if ".tmp-" in p.name]


def test_resume_with_a_different_training_config_is_exit_2(straight: Path, tmp_path: Path) -> None:
    result = run_cli(
        "train",
        "--resume-from",
        str(straight / "checkpoints" / "epoch_004.pt"),
        "trainer.batch_size=4",
        "--max-epochs",
        "5",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "trainer.batch_size" in result.stderr and "differs" in result.stderr


def test_resume_extends_training_with_max_epochs(straight: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "moved" / "trial_straight"  # a moved trial directory resumes in place
    shutil.copytree(straight, copy)
    result = run_cli(
        "train",
        "--resume-from",
        str(copy / "checkpoints" / "epoch_004.pt"),
        "--max-epochs",
        "5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(epoch_metrics(copy)) == [1, 2, 3, 4, 5]
    assert epoch_metrics(straight).keys() == {1, 2, 3, 4}  # the original is untouched
