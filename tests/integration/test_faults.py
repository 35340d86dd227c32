"""The fault matrix (docs/reliability.md): faults produced for real, outcomes checked."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from tests.conftest import mounted_tmpfs
from tests.integration.conftest import (
    HPO_SMALL,
    TINY,
    PostgresServer,
    popen_cli,
    read_jsonl,
    run_cli,
)

pytestmark = pytest.mark.integration

TRAIN = [
    *TINY,
    "--max-epochs",
    "4",
    "dataset.synthetic_num_posts=40",
    "dataset.max_length=80",
    "dataset.doc_stride=16",
    "trainer.learning_rate=1e-3",
    "trainer.num_threads=1",
    "tracking.backend=none",
]
STUDY = [
    "--config",
    HPO_SMALL,
    "search_space.model_id.choices=[tiny-bert]",
    "dataset.synthetic_num_posts=30",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.max_epochs=2",
    "tracking.backend=none",
    "study.pruner.type=NopPruner",
]


def epoch_metrics(trial: Path) -> dict[int, dict[str, Any]]:
    records = [r for r in read_jsonl(trial / "logs" / "train.jsonl") if r["event"] == "epoch_end"]
    epochs = [r["epoch"] for r in records]
    assert len(epochs) == len(set(epochs)), f"duplicate epoch records: {epochs}"
    return {
        r["epoch"]: {k: v for k, v in r["metrics"].items() if not k.startswith("system/")}
        for r in records
    }


def latest_resume_checkpoint(trial: Path) -> Path | None:
    manifest_path = trial / "checkpoints" / "manifest.json"
    if not manifest_path.is_file():
        return None
    records = [
        r
        for r in json.loads(manifest_path.read_text())["records"]
        if r["retained"] and r["kind"] == "resume"
    ]
    return (
        trial / "checkpoints" / max(records, key=lambda r: r["epoch"])["file"] if records else None
    )


def test_random_sigkills_including_mid_write_then_resume_is_bit_identical(tmp_path: Path) -> None:
    straight = run_cli("train", *TRAIN, "output.trial_id=straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    trial = tmp_path / "experiments" / "trial_chaos"
    checkpoints = trial / "checkpoints"
    rng = random.Random(7)
    kills = {"during a checkpoint write": 0, "at a random moment": 0}
    for attempt in range(8):
        resume_from = latest_resume_checkpoint(trial)
        args = (
            ["--resume-from", str(resume_from)]
            if resume_from
            else [*TRAIN, "output.trial_id=chaos"]
        )
        proc = popen_cli("train", *args, cwd=tmp_path)
        deadline = time.monotonic() + (2 + rng.random() * 12)
        while proc.poll() is None:
            mid_write = (
                attempt == 0
                and checkpoints.is_dir()
                and any(".tmp-" in p.name for p in checkpoints.iterdir())
            )
            if mid_write or (attempt > 0 and time.monotonic() > deadline):
                proc.send_signal(signal.SIGKILL)
                kills["during a checkpoint write" if mid_write else "at a random moment"] += 1
                break
            time.sleep(0.001 if attempt == 0 else 0.05)
        proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
        # after every kill: every retained checkpoint verifies, and a new run cleans temp files
        manifest_path = checkpoints / "manifest.json"
        if manifest_path.is_file():
            from dataaug_multi_both.checkpointing.store import file_sha256

            for record in json.loads(manifest_path.read_text())["records"]:
                if record["retained"]:
                    assert file_sha256(checkpoints / record["file"]) == record["sha256"]
    else:
        final = run_cli(
            "train", "--resume-from", str(latest_resume_checkpoint(trial)), cwd=tmp_path
        )
        assert final.returncode == 0, final.stderr
    assert kills["during a checkpoint write"] == 1, kills
    assert epoch_metrics(trial) == epoch_metrics(tmp_path / "experiments" / "trial_straight")
    a = torch.load(
        tmp_path / "experiments/trial_straight/checkpoints/epoch_004.pt", weights_only=True
    )["model"]
    b = torch.load(checkpoints / "epoch_004.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not [p for p in checkpoints.iterdir() if ".tmp-" in p.name]


def test_sigint_stops_train_with_a_resume_hint(tmp_path: Path) -> None:
    proc = popen_cli("train", *TRAIN, "output.trial_id=ctrlc", cwd=tmp_path)
    manifest = tmp_path / "experiments/trial_ctrlc/checkpoints/manifest.json"
    while proc.poll() is None and not manifest.is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert (
        proc.returncode == 130 and "interrupted by SIGINT" in stderr and "--resume-from" in stderr
    )


def test_hpo_sigkill_then_resume_study_completes_without_double_counting(tmp_path: Path) -> None:
    args = [
        *STUDY,
        "--study-name",
        "killed",
        "--num-trials",
        "4",
        "study.heartbeat_interval=1",
        "study.grace_period=3",
    ]
    proc = popen_cli("hpo", *args, cwd=tmp_path)
    experiments = tmp_path / "experiments"

    def training() -> bool:
        return any(
            any(r["event"] == "epoch_end" for r in read_jsonl(log))
            for log in experiments.glob("trial_*-001/logs/train.jsonl")
        )

    while proc.poll() is None and not training():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-trial 1
    proc.wait(timeout=60)
    resumed = run_cli("hpo", "--resume-study", "killed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    study_dir = next(experiments.glob("study_*"))
    study = optuna.load_study(
        study_name="killed", storage=f"sqlite:///{study_dir / 'optuna_study.db'}"
    )
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1  # the killed trial, retried once with the same parameters
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retry) == 1 and retry[0].params == failed[0].params
    cleanup = run_cli("cleanup", "--study-dir", str(study_dir), "--orphaned-only", cwd=tmp_path)
    assert cleanup.returncode == 0, cleanup.stderr
    referenced = {Path(t.user_attrs["trial_dir"]).name for t in study.trials}
    assert {p.name for p in experiments.glob("trial_*")} <= referenced


def test_nan_loss_fails_the_trial_not_the_study(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        *STUDY,
        "--num-trials",
        "2",
        "search_space.learning_rate.low=1000",
        "search_space.learning_rate.high=10000",
        "trainer.max_grad_norm=0",
        "trainer.warmup_ratio=0",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    study_dir = next((tmp_path / "experiments").glob("study_*"))
    ends = [e for e in read_jsonl(study_dir / "logs" / "hpo.jsonl") if e["event"] == "trial_end"]
    assert len(ends) == 2 and all(
        e["state"] == "FAIL" and "non-finite loss" in e["reason"] for e in ends
    )
    assert all("epoch 1, step" in e["reason"] for e in ends)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path / "disk", "60m")


def test_disk_below_threshold_stops_the_study_then_resume_continues(
    small_tmpfs: Path, tmp_path: Path
) -> None:
    # 60 MB: a tiny-bert trial fits (two 25 MB resume checkpoints at its peak), but after it
    # the study cannot promise room for another one above the 10% threshold
    experiments = f"output.experiments_dir={small_tmpfs}"
    first = run_cli(
        "hpo", *STUDY, "--study-name", "full", "--num-trials", "3", experiments, cwd=tmp_path
    )
    assert first.returncode == 4, first.stderr
    assert "not enough disk space for another trial" in first.stderr and "GB free" in first.stderr
    study_dir = next(small_tmpfs.glob("study_*"))
    assert json.loads((study_dir / "study.json").read_text())["last_exit_code"] == 4
    subprocess.run(
        ["mount", "-o", "remount,size=256m", str(small_tmpfs)], check=True
    )  # space freed
    resumed = run_cli("hpo", "--resume-study", "full", experiments, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(
        study_name="full", storage=f"sqlite:///{study_dir / 'optuna_study.db'}"
    )
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 3


def test_postgres_restart_under_a_running_study(postgres: PostgresServer, tmp_path: Path) -> None:
    secret_url = postgres.url.replace(
        "postgres@", "postgres:Pa55-w0rd-XYZ@"
    )  # trust auth ignores it
    args = [
        *STUDY,
        "--study-name",
        "pg",
        "--num-trials",
        "3",
        "trainer.max_epochs=3",
        "dataset.synthetic_num_posts=40",
        f"study.storage={secret_url}",
        "study.connection_retry_sec=30",
    ]
    proc = popen_cli("hpo", *args, cwd=tmp_path)
    experiments = tmp_path / "experiments"
    while proc.poll() is None and not list(experiments.glob("trial_*-000/logs/train.jsonl")):
        time.sleep(0.05)
    postgres.pg_ctl(
        "restart", "-m", "fast", "-w", "-t", "110"
    )  # a short outage: the worker waits it out
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    # a long outage: the worker gives up after its retry budget with exit 3, resume goes on
    long = popen_cli(
        "hpo",
        "--resume-study",
        "pg",
        "--num-trials",
        "5",
        f"study.storage={secret_url}",
        "study.connection_retry_sec=3",
        cwd=tmp_path,
    )
    while long.poll() is None and not list(experiments.glob("trial_*-003/logs/train.jsonl")):
        time.sleep(0.05)
    postgres.pg_ctl("stop", "-m", "fast", "-w", "-t", "110")  # pg_ctl waits 60 s by default
    out2, err2 = long.communicate(timeout=300)
    assert long.returncode == 3, err2
    assert "unreachable" in err2 and "Traceback" not in err2
    postgres.pg_ctl(
        "start", "-w", "-o", f"-p {postgres.port} -k {postgres.root} -c listen_addresses=127.0.0.1"
    )
    time.sleep(4)  # let the interrupted trial's heartbeat go stale
    final = run_cli(
        "hpo",
        "--resume-study",
        "pg",
        "--num-trials",
        "5",
        f"study.storage={secret_url}",
        "study.grace_period=3",
        "study.heartbeat_interval=1",
        cwd=tmp_path,
    )
    assert final.returncode == 0, final.stderr
    study = optuna.load_study(
        study_name="pg", storage=postgres.url.replace("postgresql://", "postgresql+psycopg2://")
    )
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 5
    # the password never appears in what the study wrote or printed
    everything = stdout + stderr + out2 + err2 + final.stdout + final.stderr
    for path in experiments.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".yaml"):
            everything += path.read_text(errors="ignore")
    assert "Pa55-w0rd-XYZ" not in everything


def test_study_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    result = run_cli("hpo", *STUDY, "--study-dir", str(target), cwd=tmp_path)
    assert result.returncode == 2 and "is a file" in result.stderr
