"""Data-parallel training under torchrun on CPU (gloo, 2 processes on this machine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, TINY, read_jsonl, run_cli

pytestmark = pytest.mark.integration

TRAIN = [
    *TINY,
    "dataset.synthetic_num_posts=40",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.learning_rate=5e-4",
    "trainer.num_threads=1",
]


def torchrun(
    nproc: int, command: str, *args: str, cwd: Path, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",  # a free port per job: tests run side by side
            "--nproc_per_node",
            str(nproc),
            *extra,
            "-m",
            f"dataaug_multi_both.cli.{command}",
            *args,
        ],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: int = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def epochs_of(trial: Path) -> list[dict]:
    return [r for r in read_jsonl(trial / "logs" / "train.jsonl") if r["event"] == "epoch_end"]


def test_two_processes_train_and_resume_with_either_world_size(tmp_path: Path) -> None:
    code, out, err = finish(
        torchrun(2, "train", *TRAIN, "--max-epochs", "2", "output.trial_id=ddp", cwd=tmp_path)
    )
    assert code == 0, err
    assert "data parallel: 2 processes, effective batch 32" in out
    experiments = tmp_path / "experiments"
    assert [p.name for p in experiments.glob("trial_*")] == ["trial_ddp"]
    trial = experiments / "trial_ddp"
    assert len(list(trial.rglob("manifest.json"))) == 1
    epochs = epochs_of(trial)
    assert [e["epoch"] for e in epochs] == [1, 2]  # rank 1 wrote no line
    loss = [
        e["metrics"]["train/criteria_matcher/loss"] + e["metrics"]["train/evidence_binder/loss"]
        for e in epochs
    ]
    assert loss[1] < loss[0], loss
    # the 2 ranks together saw every training window once per epoch
    data = next(r for r in read_jsonl(trial / "logs" / "train.jsonl") if r["event"] == "data")
    assert epochs[0]["timing"]["samples"] * 2 >= data["splits"]["train"]["windows"]
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{experiments / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dataaug-multi-both")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"

    # resume the 2-process run in 1 process
    manifest = json.loads((trial / "checkpoints" / "manifest.json").read_text())
    latest = max(
        (r for r in manifest["records"] if r["kind"] == "resume"), key=lambda r: r["epoch"]
    )
    single = run_cli(
        "train",
        "--resume-from",
        str(trial / "checkpoints" / latest["file"]),
        "--max-epochs",
        "3",
        cwd=tmp_path,
    )
    assert single.returncode == 0, single.stderr
    assert [e["epoch"] for e in epochs_of(trial)] == [1, 2, 3]

    # and a 1-process run resumed with 2 processes
    first = run_cli("train", *TRAIN, "--max-epochs", "1", "output.trial_id=one", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    one = experiments / "trial_one"
    code, out, err = finish(
        torchrun(
            2,
            "train",
            "--resume-from",
            str(one / "checkpoints" / "epoch_001.pt"),
            "--max-epochs",
            "2",
            cwd=tmp_path,
        )
    )
    assert code == 0, err
    assert [e["epoch"] for e in epochs_of(one)] == [1, 2]
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2  # each resumed run continued its own MLflow run


def test_hpo_trials_as_ddp_jobs_and_evaluation_with_one_or_two_processes(tmp_path: Path) -> None:
    study = [
        "--config",
        str(REPO / "configs" / "hpo_small.yaml"),
        "--study-name",
        "ddp",
        "--num-trials",
        "2",
        "search_space.model_id.choices=[tiny-bert]",
        "dataset.synthetic_num_posts=40",
        "dataset.max_length=64",
        "dataset.doc_stride=8",
        "tracking.backend=none",
        "trainer.num_threads=1",
        "--optimization-metric",
        "val_auc",
    ]
    code, out, err = finish(torchrun(2, "hpo", *study, cwd=tmp_path))
    assert code == 0, f"{out[-3000:]}\n{err}"
    experiments = tmp_path / "experiments"
    study_dir = next(experiments.glob("study_*"))
    record = json.loads((study_dir / "study.json").read_text())
    assert record["counts"].get("COMPLETE", 0) + record["counts"].get("PRUNED", 0) == 2
    for trial in experiments.glob("trial_*"):
        numbers = [e["epoch"] for e in epochs_of(trial)]
        assert numbers == sorted(set(numbers))  # one writer per trial
    reports = {}
    for nproc in (1, 2):
        output = tmp_path / f"report-{nproc}.json"
        args = ["--study-dir", str(study_dir), "--test-split", "validation"]
        code, out, err = finish(
            torchrun(nproc, "evaluate_study", *args, "--output-path", str(output), cwd=tmp_path)
        )
        assert code == 0, err
        reports[nproc] = json.loads(output.read_text())
    assert reports[1]["metrics"] == reports[2]["metrics"]
    assert reports[1]["test_split"] == reports[2]["test_split"]


def rank_pids(parent: int) -> dict[int, int]:
    """torchrun's worker processes by their RANK."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            ppid = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
            if ppid != parent:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration):
            continue
        for item in env:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(entry.name)
    return found


def kill_rank_1_after_epoch(proc: subprocess.Popen, trial: Path, epoch: int) -> float:
    while proc.poll() is None:
        if (trial / "logs" / "train.jsonl").is_file() and any(
            e["epoch"] == epoch for e in epochs_of(trial)
        ):
            break
        time.sleep(0.1)
    os.kill(rank_pids(proc.pid)[1], signal.SIGKILL)
    return time.monotonic()


def test_a_killed_rank_ends_the_job_and_elastic_restarts_resume(tmp_path: Path) -> None:
    args = [*TRAIN, "--max-epochs", "4", "tracking.backend=none", "trainer.ddp_timeout_sec=30"]
    proc = torchrun(2, "train", *args, "output.trial_id=killed", cwd=tmp_path)
    killed_at = kill_rank_1_after_epoch(proc, tmp_path / "experiments" / "trial_killed", 1)
    code, out, err = finish(proc)
    assert code != 0
    assert time.monotonic() - killed_at < 60  # no hang
    # with --max-restarts torchrun starts the job again, and it resumes where it was
    proc = torchrun(2, "train", *args, cwd=tmp_path, extra=("--max-restarts", "1"))
    experiments = tmp_path / "experiments"
    while proc.poll() is None and not list(experiments.glob("trial_2*")):
        time.sleep(0.1)
    trial = next(experiments.glob("trial_2*"))
    kill_rank_1_after_epoch(proc, trial, 2)
    code, out, err = finish(proc)
    assert code == 0, err
    assert "torchrun restart: resuming from" in out + err
    assert [e["epoch"] for e in epochs_of(trial)] == [1, 2, 3, 4]
    assert len(list(experiments.glob("trial_*"))) == 2  # the restart made no new trial
