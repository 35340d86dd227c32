"""Contract details a new user meets first: the resume hint in epoch 1, `--resume-from` a
trial directory."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import (
    HPO_SMALL,
    TINY_STUDY,
    PostgresServer,
    popen_cli,
    read_jsonl,
    run_cli,
    run_cli_memory_limited,
)

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
    # run_start is written once the handler that turns Ctrl-C into a safe stop is installed
    while not (log.is_file() and any(r["event"] == "run_start" for r in read_jsonl(log))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "during epoch 1: no epoch has finished, nothing to resume yet" in stderr
    assert "--resume-from" not in stderr and "Traceback" not in stderr


def test_ctrl_c_before_training_starts_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    args = [*TINY, "dataset.synthetic_num_posts=2000", "output.trial_id=setup"]
    proc = popen_cli("train", *args, cwd=tmp_path)
    trial = tmp_path / "experiments" / "trial_setup"
    deadline = time.monotonic() + 180
    while not trial.is_dir():  # setup has begun: the tokenizer and 2,000 posts come next
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume-from" not in stderr
    log = trial / "logs" / "train.jsonl"
    started = log.is_file() and any(r["event"] == "run_start" for r in read_jsonl(log))
    if started:  # the signal came late: the handler of the training loop answered it
        assert "during epoch 1: no epoch has finished, nothing to resume yet" in stderr
    else:
        assert "interrupted by SIGINT before training started: nothing to resume" in stderr
        assert not trial.exists()  # the run directory it had made is taken back


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


def mlflow_statuses(experiments: Path) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{experiments / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dataaug-multi-both")
    if experiment is None:
        return []
    return [r.info.status for r in client.search_runs([experiment.experiment_id])]


def test_a_run_that_cannot_load_its_model_leaves_nothing_behind(tmp_path: Path) -> None:
    args = [a for a in TINY if a != "tracking.backend=none"]
    args[args.index("tiny-bert")] = str(tmp_path / "no-such-model")
    result = run_cli("train", *args, "output.trial_id=unloadable", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "model directory not found" in result.stderr
    experiments = tmp_path / "experiments"
    assert not (experiments / "trial_unloadable").exists()
    assert "RUNNING" not in mlflow_statuses(experiments)


def test_a_study_whose_data_is_missing_leaves_no_study_directory(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "2",
        *TINY_STUDY,
        f"dataset.dataset_id={tmp_path / 'no-such-data'}",
        cwd=tmp_path,
    )
    assert result.returncode == 3, result.stderr
    experiments = tmp_path / "experiments"
    assert not list(experiments.glob("study_*")), list(experiments.iterdir())
    assert "RUNNING" not in mlflow_statuses(experiments)


def test_a_study_trial_whose_model_cannot_load_fails_and_takes_its_directory_back(
    tmp_path: Path,
) -> None:
    # a model directory that exists but does not load (a missing one stops the study before
    # its first trial: hpo/model_check)
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "1",
        *TINY_STUDY,
        f"search_space.model_id.choices=[{broken}]",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr  # partial success: the trial failed
    experiments = tmp_path / "experiments"
    assert len(list(experiments.glob("study_*"))) == 1
    assert not list(experiments.glob("trial_*")), list(experiments.iterdir())
    statuses = mlflow_statuses(experiments)
    assert statuses and "RUNNING" not in statuses  # the study's parent run ended too


def test_cleanup_finds_a_run_killed_before_its_first_epoch(tmp_path: Path) -> None:
    experiments = tmp_path / "experiments"
    killed = experiments / "trial_killed"
    (killed / "logs").mkdir(parents=True)
    (killed / "config.yaml").write_text("model: {}\n")
    (killed / "logs" / "train.jsonl").write_text('{"event": "setup", "epoch": 0}\n')
    elsewhere = experiments / "trial_elsewhere"  # its checkpoints went to --checkpoint-dir
    (elsewhere / "logs").mkdir(parents=True)
    (elsewhere / "logs" / "train.jsonl").write_text('{"event": "epoch_end", "epoch": 1}\n')
    # a directory named like a run but holding a file no run writes is never removed whole
    notes = experiments / "trial_keep_notes"
    (notes / "logs").mkdir(parents=True)
    (notes / "logs" / "train.jsonl").write_text('{"event": "setup", "epoch": 0}\n')
    (notes / "results.csv").write_text("mine")
    # a name that would be markup or a terminal escape is shown as it is, never interpreted
    (elsewhere / "logs" / "[b]\x1b]0;.tmp-1").write_text("x")
    preview = run_cli("cleanup", "--orphaned-only", "--dry-run", cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert "trial_killed" in preview.stdout and "run that kept no checkpoint" in preview.stdout
    assert "[b]?]0;.tmp-1" in preview.stdout and "\x1b" not in preview.stdout
    assert killed.is_dir()
    done = run_cli("cleanup", "--orphaned-only", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not killed.exists() and elsewhere.is_dir() and (notes / "results.csv").is_file()
    # --trial-dir given a directory that is not a run's (a slip of the finger)
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.c").write_text("int main;")
    slip = run_cli("cleanup", "--trial-dir", str(project), "--orphaned-only", cwd=tmp_path)
    assert slip.returncode == 0, slip.stderr
    assert (project / "src" / "main.c").is_file()


def test_a_study_directory_outside_the_experiments_directory_finds_its_trials(
    tmp_path: Path,
) -> None:
    study_dir = tmp_path / "studies" / "elsewhere"
    made = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "1",
        "--study-dir",
        str(study_dir),
        *TINY_STUDY,
        "tracking.backend=none",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    (trial,) = (tmp_path / "experiments").glob("trial_*")  # where output.experiments_dir says
    stray = trial / "checkpoints" / "epoch_042.pt"
    stray.write_bytes(b"not in the manifest")
    cleaned = run_cli("cleanup", "--study-dir", str(study_dir), "--orphaned-only", cwd=tmp_path)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not stray.exists() and any((trial / "checkpoints").glob("epoch_*.pt"))
    evaluated = run_cli("evaluate_study", "--study-dir", str(study_dir), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr


def test_a_corrupted_last_checkpoint_with_default_retention_names_the_way_out(
    tmp_path: Path,
) -> None:
    """keep_last_n=1: the only other checkpoint is the best, weights-only. A flipped byte in
    the last one is not resumed past silently: exit 4 names the weights-only checkpoint and
    the command; that command continues from its weights with a fresh optimizer, and says so
    in the console and in train.jsonl."""
    args = [*TINY, "dataset.synthetic_num_posts=30", "output.trial_id=flip"]
    # a learning rate too small to change any prediction: epoch 1 stays the best
    first = run_cli(
        "train", *args, "trainer.max_epochs=2", "trainer.learning_rate=1e-12", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    trial = tmp_path / "experiments" / "trial_flip"
    last, best = trial / "checkpoints" / "epoch_002.pt", trial / "checkpoints" / "epoch_001.pt"
    assert last.is_file() and best.is_file()
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))

    refused = run_cli("train", "--resume-from", str(trial), "--max-epochs", "3", cwd=tmp_path)
    assert refused.returncode == 4, refused.stderr
    assert "SHA256 does not match" in refused.stderr
    command = f"--resume-from {best}"
    assert "epoch_001.pt (epoch 1, weights-only) does" in refused.stderr
    assert command in refused.stderr and "Traceback" not in refused.stderr

    resumed = run_cli(
        "train",
        "--resume-from",
        str(best),
        "--max-epochs",
        "3",
        "trainer.learning_rate=1e-12",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "this is not an exact resume" in " ".join(resumed.stdout.split())
    records = read_jsonl(trial / "logs" / "train.jsonl")
    (resume,) = [r for r in records if r["event"] == "resume"]
    assert resume["weights_only"] is True and resume["epoch"] == 1
    assert [r["epoch"] for r in records if r["event"] == "epoch_end"] == [1, 2, 3]


# a step of batch 256 at 512 tokens needs gigabytes; one of 8, a few hundred megabytes
BIG_STEP = ["dataset.synthetic_num_posts=30", "dataset.max_length=512", "dataset.doc_stride=64"]


def test_out_of_memory_in_train_is_one_line_with_what_to_change(tmp_path: Path) -> None:
    args = [*TINY, *BIG_STEP, "trainer.batch_size=256", "output.trial_id=oom"]
    result = run_cli_memory_limited("train", 1500, *args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: out of memory on cpu (tried to allocate ")
    assert "try trainer.batch_size=128 trainer.gradient_accumulation_steps=2" in line
    assert "RuntimeError" not in line  # the allocator's own text adds nothing
    (end,) = [
        r
        for r in read_jsonl(tmp_path / "experiments" / "trial_oom" / "logs" / "train.jsonl")
        if r["event"] == "run_end"
    ]
    assert end["status"] == "FAILED" and "can't allocate memory" in end["reason"]


def test_out_of_memory_fails_one_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    config = tmp_path / "hpo_oom.yaml"
    config.write_text(
        "dataset: {dataset_id: synthetic, synthetic_num_posts: 30, max_length: 512,"
        " doc_stride: 64}\n"
        "trainer: {max_epochs: 1, num_threads: 1}\n"
        "tracking: {backend: none}\n"
        "study: {num_trials: 3, sampler: {type: GridSampler}}\n"
        "search_space:\n"
        "  model_id: {type: categorical, choices: [tiny-bert]}\n"
        "  batch_size: {type: categorical, choices: [8, 256, 16]}\n"
    )
    result = run_cli_memory_limited("hpo", 1500, "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # partial success
    assert "Traceback" not in result.stderr
    (study_dir,) = (tmp_path / "experiments").glob("study_*")
    record = json.loads((study_dir / "study.json").read_text())
    assert record["counts"] == {"COMPLETE": 2, "FAIL": 1} and record["status"] == "failed"
    import optuna

    study = optuna.load_study(
        study_name=record["name"], storage=f"sqlite:///{study_dir / 'optuna_study.db'}"
    )
    (failed,) = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed.params["batch_size"] == 256
    assert failed.user_attrs["fail_reason"].startswith("out of memory on cpu")


def test_four_workers_started_at_once_on_a_fresh_postgres_database(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """As docs/hpo.md tells users to: the same command on several workers at the same moment.
    Creating Optuna's tables and the study, and recording its id, happen once."""
    import optuna
    import psycopg2

    for attempt in range(3):
        database = f"fresh_{attempt}"
        connection = psycopg2.connect(
            host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres"
        )
        connection.autocommit = True
        connection.cursor().execute(f"CREATE DATABASE {database}")
        connection.close()
        url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{database}"
        args = [
            "--config",
            HPO_SMALL,
            "--study-name",
            "race",
            "--study-dir",
            str(tmp_path / f"shared_{attempt}"),
            "--num-trials",
            "1",
            *TINY_STUDY,
            "tracking.backend=none",
            f"study.storage={url}",
        ]
        workers = [popen_cli("hpo", *args, cwd=tmp_path) for _ in range(4)]
        for worker in workers:
            _, stderr = worker.communicate(timeout=600)
            assert worker.returncode == 0, f"attempt {attempt}: {stderr}"
        study = optuna.load_study(
            study_name="race", storage=url.replace("postgresql://", "postgresql+psycopg2://")
        )
        assert [t.state.name for t in study.trials].count("COMPLETE") == 1
        record = json.loads((tmp_path / f"shared_{attempt}" / "study.json").read_text())
        assert record["study_id"] == f"study_{study.user_attrs['study_id']}"


def test_a_planted_study_record_does_not_steer_cleanup_at_other_trials(tmp_path: Path) -> None:
    import shutil

    import optuna

    made = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "1",
        *TINY_STUDY,
        "tracking.backend=none",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    experiments = tmp_path / "experiments"
    (victim,) = experiments.glob("study_*")
    before = sorted(str(p.relative_to(experiments)) for p in experiments.rglob("*.pt"))
    planted = tmp_path / "elsewhere" / "study_x"
    planted.mkdir(parents=True)
    shutil.copy(victim / "study.json", planted / "study.json")  # same id, same trials home
    name = json.loads((planted / "study.json").read_text())["name"]
    optuna.create_study(study_name=name, storage=f"sqlite:///{planted / 'optuna_study.db'}")
    result = run_cli("cleanup", "--study-dir", str(planted), "--aggressive", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(experiments)) for p in experiments.rglob("*.pt")) == before
    assert before  # the victim's trial kept its checkpoint


def test_a_worker_whose_start_fails_leaves_the_other_workers_study_alone(
    tmp_path: Path,
) -> None:
    """Two workers on one new study directory (SQLite), started together; one cannot load
    its data. It takes back only what it made, never what the other one is using."""
    shared = ["--config", HPO_SMALL, "--study-name", "pair", "--study-dir", "shared"]
    good = popen_cli(
        "hpo", *shared, "--num-trials", "1", *TINY_STUDY, "tracking.backend=none", cwd=tmp_path
    )
    bad = popen_cli(
        "hpo",
        *shared,
        "--num-trials",
        "1",
        *TINY_STUDY,
        "tracking.backend=none",
        f"dataset.dataset_id={tmp_path / 'no-such-data'}",
        cwd=tmp_path,
    )
    _, bad_err = bad.communicate(timeout=600)
    _, good_err = good.communicate(timeout=600)
    assert bad.returncode == 3, bad_err
    assert good.returncode == 0, good_err
    record = json.loads((tmp_path / "shared" / "study.json").read_text())
    assert record["counts"] == {"COMPLETE": 1}
