"""`hpo` end to end: real studies of tiny-bert trials on the synthetic data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.integration.conftest import (
    HPO_SMALL,
    PostgresServer,
    popen_cli,
    read_jsonl,
    run_cli,
)

pytestmark = pytest.mark.integration

SMALL = [
    "search_space.model_id.choices=[tiny-bert]",
    "dataset.synthetic_num_posts=30",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.max_epochs=2",
    "trainer.num_threads=1",
]
NO_MLFLOW = ["tracking.backend=none"]


def study_dir_of(experiments: Path) -> Path:
    dirs = sorted(experiments.glob("study_*"))
    assert len(dirs) == 1, dirs
    return dirs[0]


def load_study(study_dir: Path) -> optuna.Study:
    record = json.loads((study_dir / "study.json").read_text())
    return optuna.load_study(
        study_name=record["name"], storage=f"sqlite:///{study_dir / 'optuna_study.db'}"
    )


def checkpoint_files(experiments: Path) -> dict[str, list[str]]:
    return {
        d.name: sorted(p.name for p in (d / "checkpoints").glob("*.pt"))
        for d in sorted(experiments.glob("trial_*"))
        if (d / "checkpoints").is_dir()
    }


def test_study_end_to_end(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "4",
        "--optimization-metric",
        "val_auc",
        *SMALL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    experiments = tmp_path / "experiments"
    study_dir = study_dir_of(experiments)
    record = json.loads((study_dir / "study.json").read_text())
    assert record["status"] == "completed" and record["last_exit_code"] == 0
    assert (
        record["requested_trials"] == 4
        and record["optimization_metric"] == "val/criteria_matcher/auc"
    )
    assert {"study_id", "name", "created", "storage", "config_hash"} <= set(record)
    for name in ("optuna_study.db", "config.yaml", "split_manifest.json", "logs/hpo.jsonl"):
        assert (study_dir / name).is_file(), name
    assert (study_dir / "plots" / "optimization_history.png").is_file()

    events = read_jsonl(study_dir / "logs" / "hpo.jsonl")
    ends = [e for e in events if e["event"] == "trial_end"]
    assert [e["event"] for e in events][0] == "study_start" and events[-1]["event"] == "study_end"
    # every trial value has its reference point: the baselines of the metric on validation
    baselines = events[0]["validation_baselines"]
    assert set(baselines) == {"all_absent", "all_present", "train_rate"}
    assert baselines["all_absent"] == 0.5  # constant scores: AUC one half
    assert "trivial baselines: all_absent 0.5000" in result.stdout
    assert len(ends) == 4 and all(
        {"number", "params", "state", "value", "duration_sec", "bytes_freed"} <= set(e)
        for e in ends
    )

    # the study DB stays a plain Optuna storage
    cli = subprocess.run(
        [
            str(Path(sys.executable).with_name("optuna")),
            "trials",
            "--study-name",
            record["name"],
            "--storage",
            f"sqlite:///{study_dir / 'optuna_study.db'}",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert len(json.loads(cli.stdout)) == 4

    # storage budget: only the best trial keeps a checkpoint, its best, weights-only
    study = load_study(study_dir)
    best_dir = Path(study.best_trial.user_attrs["trial_dir"])
    kept = {name: files for name, files in checkpoint_files(experiments).items() if files}
    assert list(kept) == [best_dir.name] and len(kept[best_dir.name]) == 1
    manifest = json.loads((best_dir / "checkpoints" / "manifest.json").read_text())
    retained = [r for r in manifest["records"] if r["retained"]]
    assert len(retained) == 1 and retained[0]["kind"] == "weights-only" and retained[0]["is_best"]
    assert all(t.user_attrs["trial_dir"].endswith(t.user_attrs["trial_id"]) for t in study.trials)

    # MLflow: a parent run per study, a child run per trial with the contract tags
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{experiments / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("dataaug-multi-both").experiment_id])
    parent = [r for r in runs if r.info.run_id == record["mlflow_parent_run_id"]]
    children = [
        r for r in runs if r.data.tags.get("mlflow.parentRunId") == record["mlflow_parent_run_id"]
    ]
    assert len(parent) == 1 and len(children) == 4
    # ids as the contract names them: the directory names, the same in study.json and MLflow
    assert record["study_id"] == study_dir.name == parent[0].data.tags["study_id"]
    assert record["best"]["trial_id"] == best_dir.name
    trial_dirs = {t.number: Path(t.user_attrs["trial_dir"]).name for t in study.trials}
    for child in children:
        tags = child.data.tags
        assert tags["study_id"] == record["study_id"]
        number = int(tags["trial_number"])
        assert tags["mlflow.runName"] == f"trial_{number:03d}_tiny-bert"
        assert tags["trial_id"] == trial_dirs[number]
    assert "best_value" in parent[0].data.metrics


def test_failed_trials_are_recorded_and_exit_1_and_bound_the_study_not_each_worker(
    tmp_path: Path,
) -> None:
    """Two workers on one study whose every trial fails: failures use up the study's budget,
    not each worker's (which ran 2 x num_trials failing trials)."""
    # a model directory that cannot be loaded: every trial fails (a Hub model offline would
    # stop the study before its first trial: test_cli_help)
    (tmp_path / "broken-model").mkdir()
    (tmp_path / "broken-model" / "config.json").write_text('{"model_type": "bert"}')
    args = [
        "--config",
        HPO_SMALL,
        "--study-name",
        "broken",
        "--study-dir",
        str(tmp_path / "experiments" / "study_shared"),
        "--num-trials",
        "2",
        *SMALL,
        "search_space.model_id.choices=[broken-model]",
        *NO_MLFLOW,
    ]
    workers = [popen_cli("hpo", *args, cwd=tmp_path) for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 1, stderr
        assert "trial(s) failed" in stderr and "broken-model" in stderr
    study_dir = tmp_path / "experiments" / "study_shared"
    study = load_study(study_dir)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and all("cannot load model from" in t.user_attrs["fail_reason"] for t in failed)
    # 2, or 3 when both workers claimed a trial at the same moment; never 2 per worker
    assert len(study.trials) <= 3, [t.state.name for t in study.trials]
    assert json.loads((study_dir / "study.json").read_text())["last_exit_code"] == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--direction", "minimize"], "--direction 'minimize' is not supported"),
        (["search_space.learning_rate.low=0"], "loguniform needs low > 0"),
        (["study.sampler.type=MagicSampler"], "unknown sampler 'MagicSampler'"),
        (["--optimization-metric", "val_bogus"], "unknown optimization metric"),
    ],
)
def test_configuration_errors_are_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run_cli("hpo", "--config", HPO_SMALL, *SMALL, *NO_MLFLOW, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


def one_epoch_study(tmp_path: Path, name: str, num_trials: int) -> Path:
    """A finished study of one-epoch trials without MLflow; its directory."""
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--study-name",
        name,
        "--num-trials",
        str(num_trials),
        *SMALL,
        "trainer.max_epochs=1",
        *NO_MLFLOW,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return study_dir_of(tmp_path / "experiments")


def test_resume_study_by_id_and_name(tmp_path: Path) -> None:
    study_dir = one_epoch_study(tmp_path, "resumable", 2)
    by_id = run_cli("hpo", "--resume-study", study_dir.name, "--num-trials", "3", cwd=tmp_path)
    assert by_id.returncode == 0, by_id.stderr
    by_name = run_cli("hpo", "--resume-study", "resumable", "--num-trials", "4", cwd=tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    study = load_study(study_dir)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    events = [e["event"] for e in read_jsonl(study_dir / "logs" / "hpo.jsonl")]
    assert events.count("study_resume") == 2
    unknown = run_cli("hpo", "--resume-study", "no-such-study", cwd=tmp_path)
    assert unknown.returncode == 3 and "no study 'no-such-study'" in unknown.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_a_worker_waiting_on_a_trial_without_heartbeats_says_so_and_stops_on_a_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """Outside a trial's training, SIGTERM (a Slurm preemption) stops as cleanly as Ctrl-C:
    the study's summary is written and the exit code is 128 + the signal."""
    study_dir = one_epoch_study(tmp_path, "claimed", 1)
    planted = load_study(study_dir).ask()  # RUNNING, and no heartbeat will ever fail it
    worker = popen_cli("hpo", "--resume-study", "claimed", "--num-trials", "2", cwd=tmp_path)
    notice = f"waiting for 1 trial(s) running on other workers ({planted.number})"
    lines: list[str] = []
    assert worker.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(worker.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(notice in line for line in lines), 120, "the waiting notice")
        told = True
    except AssertionError:
        told = False
    worker.send_signal(signum)
    worker.wait(timeout=60)
    reader.join(timeout=10)
    assert worker.stderr is not None
    stderr = worker.stderr.read()
    assert told, "".join(lines)
    assert worker.returncode == 128 + signum, stderr
    assert f"interrupted by {signum.name}; continue with --resume-study" in stderr
    assert "Traceback" not in stderr
    record = json.loads((study_dir / "study.json").read_text())
    assert record["last_exit_code"] == 128 + signum
    trials = load_study(study_dir).get_trials(deepcopy=False)
    finished = [t.number for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert finished == [0]
    assert [t.state.name for t in trials if t.number == planted.number] == ["RUNNING"]


def test_pruned_trials_release_their_checkpoints(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "6",
        "--optimization-metric",
        "val_auc",
        *SMALL,
        *NO_MLFLOW,
        "trainer.max_epochs=3",
        "study.pruner.n_startup_trials=1",
        "study.pruner.n_warmup_steps=0",
        "study.sampler.type=RandomSampler",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study_dir = study_dir_of(tmp_path / "experiments")
    study = load_study(study_dir)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned, [t.state.name for t in study.trials]
    files = checkpoint_files(tmp_path / "experiments")
    for trial in pruned:
        assert files.get(Path(trial.user_attrs["trial_dir"]).name, []) == []
        manifest = json.loads(
            (Path(trial.user_attrs["trial_dir"]) / "checkpoints" / "manifest.json").read_text()
        )
        assert manifest["records"] and not any(r["retained"] for r in manifest["records"])


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_on_postgres_survive_a_killed_worker(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-study"
    args = [
        sys.executable,
        "-m",
        "dataaug_multi_both.cli.hpo",
        "--config",
        HPO_SMALL,
        "--study-name",
        "pg-study",
        "--study-dir",
        str(shared),
        "--num-trials",
        "4",
        *SMALL,
        *NO_MLFLOW,
        "trainer.max_epochs=3",
        "dataset.synthetic_num_posts=50",
        f"study.storage={postgres.url}",
        "study.heartbeat_interval=1",
        "study.grace_period=4",
        "study.pruner.type=NopPruner",
    ]
    storage = postgres.url.replace("postgresql://", "postgresql+psycopg2://")
    a = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    study: Any = None

    def trial_in_training() -> bool:
        nonlocal study
        if study is None:
            try:
                study = optuna.load_study(study_name="pg-study", storage=storage)
            except KeyError:
                return False
        running = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
        return any(t.intermediate_values for t in running)  # past its first epoch

    wait_for(trial_in_training, 240, "the first worker's trial to be in training")
    b = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    a.send_signal(signal.SIGKILL)  # mid-trial: its RUNNING trial must be failed and retried
    a.wait(timeout=60)
    _, b_err = b.communicate(timeout=600)
    assert b.returncode == 0, b_err
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4
    dirs = [t.user_attrs["trial_dir"] for t in trials]
    assert len(dirs) == len(set(dirs))  # no trial directory shared by two trials
    killed = [t for t in trials if t.state.name == "FAIL" and not t.user_attrs.get("surplus")]
    assert len(killed) == 1
    retries = [
        t
        for t in trials
        if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
        == killed[0].number
    ]
    assert len(retries) == 1 and retries[0].params == killed[0].params
    assert retries[0].state.name in ("COMPLETE", "PRUNED")
    for trial in finished:
        assert Path(trial.user_attrs["trial_dir"]).is_dir()
