"""Contract details a new user meets first: the resume hint in epoch 1, `--resume-from` a
trial directory."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import popen_cli, read_jsonl, run_cli

pytestmark = pytest.mark.integration

TINY = [
    "--model",
    "tiny-bert",
    "--dataset",
    "synthetic",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.num_threads=1",
    "tracking.backend=none",
]


def test_ctrl_c_in_the_first_epoch_says_there_is_nothing_to_resume(tmp_path: Path) -> None:
    args = [*TINY, "dataset.synthetic_num_posts=400", "output.trial_id=early"]
    proc = popen_cli("train", *args, cwd=tmp_path)
    log = tmp_path / "experiments" / "trial_early" / "logs" / "train.jsonl"
    deadline = time.monotonic() + 180
    while not (log.is_file() and any(r["event"] == "setup" for r in read_jsonl(log))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "during epoch 1: no epoch has finished, nothing to resume yet" in stderr
    assert "--resume-from" not in stderr and "Traceback" not in stderr


def test_resume_from_a_trial_directory_takes_its_latest_resume_checkpoint(tmp_path: Path) -> None:
    args = [*TINY, "dataset.synthetic_num_posts=30", "output.trial_id=dir"]
    first = run_cli("train", *args, "--max-epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    trial = tmp_path / "experiments" / "trial_dir"
    for given, until in ((trial, "2"), (trial / "checkpoints", "3")):
        resumed = run_cli(
            "train",
            "--resume-from",
            str(given),
            "--max-epochs",
            until,
            "tracking.backend=none",
            cwd=tmp_path,
        )
        assert resumed.returncode == 0, resumed.stderr
    epochs = [
        r["epoch"] for r in read_jsonl(trial / "logs" / "train.jsonl") if r["event"] == "epoch_end"
    ]
    assert epochs == [1, 2, 3]
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run_cli("train", "--resume-from", str(empty), cwd=tmp_path)
    assert refused.returncode == 2 and "holds no resume checkpoint" in refused.stderr
