"""The Slurm recipes of examples/slurm, run here as far as a machine without Slurm allows:
the scripts parse; the exact `hpo` worker command they build runs as two workers on one
PostgreSQL study with a SIGTERM (preemption) in the middle and a requeued restart; the
multi-node training script runs under stand-ins for `srun` and `scontrol`, is killed, and
its requeued start resumes the same trial."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from tests.integration.conftest import (
    REPO,
    TINY,
    PostgresServer,
    free_port,
    read_jsonl,
)

pytestmark = pytest.mark.integration

SLURM = REPO / "examples" / "slurm"
STUDY = [
    "search_space.model_id.choices=[tiny-bert]",
    "dataset.synthetic_num_posts=50",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.max_epochs=3",
    "trainer.num_threads=1",
    "tracking.backend=none",
    "study.pruner.type=NopPruner",
]


def test_every_script_parses() -> None:
    scripts = sorted(SLURM.glob("*.sh")) + sorted(SLURM.glob("*.sbatch"))
    assert len(scripts) >= 3
    for script in scripts:
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{script.name}: {done.stderr}"


def worker_env(tmp_path: Path, storage: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATAAUG_STUDY_STORAGE": storage,
        "SHARED_DIR": str(tmp_path / "shared"),
        "STUDY_NAME": "slurm",
        "HPO_CONFIG": str(REPO / "configs" / "hpo_small.yaml"),
        "NUM_TRIALS": "4",
        "PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }


def test_the_worker_command_keeps_the_password_off_the_command_line(tmp_path: Path) -> None:
    env = {**worker_env(tmp_path, "postgresql://optuna:s3cret@db:5432/optuna"), "DRY_RUN": "1"}
    done = subprocess.run(
        ["bash", str(SLURM / "hpo_worker.sh"), "trainer.device=cuda"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout
    assert "--study-name slurm" in done.stdout and "trainer.device=cuda" in done.stdout
    assert f"output.experiments_dir='{tmp_path / 'shared'}'" in shlex.split(done.stdout)


def start_worker(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", str(SLURM / "hpo_worker.sh"), *STUDY],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_survive_a_sigterm_and_a_requeue(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    env = worker_env(tmp_path, postgres.url)
    storage = postgres.url.replace("postgresql://", "postgresql+psycopg2://")
    a = start_worker(tmp_path, env)
    study: Any = None

    def trial_in_training() -> bool:
        nonlocal study
        if study is None:
            try:
                study = optuna.load_study(study_name="slurm", storage=storage)
            except KeyError:
                return False
        running = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
        return any(t.intermediate_values for t in running)

    wait_for(trial_in_training, 240, "a trial in training")
    b = start_worker(tmp_path, env)
    a.send_signal(signal.SIGTERM)  # what Slurm sends the batch script on preemption
    _, a_err = a.communicate(timeout=120)
    assert a.returncode == 128 + signal.SIGTERM, a_err
    assert "Traceback" not in a_err
    assert "interrupted by SIGTERM; continue with --resume-study" in a_err  # not train's hint
    again = start_worker(tmp_path, env)  # the requeued job: the same command
    _, again_err = again.communicate(timeout=600)
    _, b_err = b.communicate(timeout=600)
    assert again.returncode == 0, again_err
    assert b.returncode == 0, b_err
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4  # none lost, none counted twice
    dirs = [t.user_attrs["trial_dir"] for t in trials if "trial_dir" in t.user_attrs]
    assert len(dirs) == len(set(dirs))
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1
    requeued = [t for t in finished if t.params == interrupted[0].params]
    assert requeued, "the interrupted trial's parameters were not run again"


def fake_slurm(tmp_path: Path) -> Path:
    """`srun` that runs its command (options dropped) and `scontrol show hostnames`."""
    bin_dir = tmp_path / "fake-slurm"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(
        '#!/usr/bin/env bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n'
    )
    (bin_dir / "scontrol").write_text("#!/usr/bin/env bash\necho localhost\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def start_training_job(tmp_path: Path, bin_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "VENV": sys.prefix,
        "SLURM_SUBMIT_DIR": str(tmp_path),
        "SLURM_JOB_ID": "4242",
        "SLURM_NNODES": "1",
        "SLURM_JOB_NODELIST": "localhost",
        "SLURM_CPUS_PER_TASK": "1",
        "GPUS_PER_NODE": "1",
        "MASTER_PORT": str(free_port()),
        "SHARED_DIR": str(tmp_path / "shared"),
        "DEVICE": "cpu",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [
            "bash",
            str(SLURM / "train_multinode.sbatch"),
            *TINY,
            "--max-epochs",
            "3",
            "dataset.synthetic_num_posts=40",
            "dataset.max_length=80",
            "dataset.doc_stride=16",
            "trainer.save_steps=5",
            "tracking.backend=none",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a Slurm job
    )


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (torchrun starts its workers in sessions of their own)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def kill_tree(pid: int) -> None:
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)


def test_the_multinode_script_resumes_its_trial_when_requeued(tmp_path: Path) -> None:
    bin_dir = fake_slurm(tmp_path)
    manifest = tmp_path / "shared" / "trial_slurm_4242" / "checkpoints" / "manifest.json"
    job = start_training_job(tmp_path, bin_dir)

    def saved_in_epoch_2() -> bool:
        try:
            mid = json.loads(manifest.read_text()).get("mid_epoch")
        except (OSError, ValueError):
            return False
        return bool(mid and mid["epoch"] == 2)

    wait_for(saved_in_epoch_2, 300, "a mid-epoch checkpoint in epoch 2")
    kill_tree(job.pid)  # the node is gone: no time for a safe stop
    job.communicate(timeout=60)
    requeued = start_training_job(tmp_path, bin_dir)  # Slurm starts the script again
    out, err = requeued.communicate(timeout=300)
    assert requeued.returncode == 0, err
    trial = manifest.parent.parent
    events = read_jsonl(trial / "logs" / "train.jsonl")
    resumes = [e for e in events if e["event"] == "resume"]
    assert len(resumes) == 1 and "mid_epoch.pt" in resumes[0]["checkpoint"]
    assert [e["epoch"] for e in events if e["event"] == "epoch_end"] == [1, 2, 3]


STAND_IN = """#!/usr/bin/env bash
# stands in for the worker / torchrun: records its arguments and the signals it gets
printf '%s\\n' "$@" > "$RECORD/args"
trap 'echo TERM >> "$RECORD/signals"; exit 143' TERM
touch "$RECORD/started"
while true; do sleep 0.05; done
"""


def stand_ins(tmp_path: Path) -> tuple[Path, Path]:
    """A bin directory with `srun` (runs its command), `scontrol` (records its arguments; says
    `localhost` for `show hostnames`), `torchrun` and `python` stand-ins; and the record dir."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "srun").write_text(
        '#!/usr/bin/env bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n'
    )
    (bin_dir / "scontrol").write_text(
        '#!/usr/bin/env bash\necho "$@" >> "$RECORD/scontrol"\necho localhost\n'
    )
    (bin_dir / "torchrun").write_text(STAND_IN)
    (bin_dir / "python").write_text(STAND_IN)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir, record


def run_until_signalled(
    script: str, env: dict[str, str], record: Path, signum: int, args: list[str]
) -> subprocess.CompletedProcess:
    job = subprocess.Popen(
        ["bash", str(SLURM / script), *args],
        env=env,
        cwd=env["SLURM_SUBMIT_DIR"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (record / "started").exists(), 30, "the stand-in to start")
    job.send_signal(signum)  # to the batch script only, as Slurm's --signal=B:USR1 does
    out, err = job.communicate(timeout=30)
    return subprocess.CompletedProcess(job.args, job.returncode, out, err)


def slurm_env(tmp_path: Path, bin_dir: Path, record: Path, shared: Path) -> dict[str, str]:
    venv = tmp_path / "venv"  # `source $VENV/bin/activate` must find something
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("")
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "VENV": str(venv),
        "PYTHON": str(bin_dir / "python"),
        "SLURM_SUBMIT_DIR": str(REPO),
        "SLURM_JOB_ID": "777",
        "SLURM_ARRAY_JOB_ID": "700",
        "SLURM_ARRAY_TASK_ID": "3",
        "SLURM_NNODES": "1",
        "SLURM_JOB_NODELIST": "localhost",
        "GPUS_PER_NODE": "1",
        "SHARED_DIR": str(shared),
        "DATAAUG_STUDY_STORAGE": "postgresql://optuna:s3cret@db:5432/optuna",
    }


@pytest.mark.parametrize("script", ["hpo_array.sbatch", "train_multinode.sbatch"])
def test_near_the_time_limit_the_job_stops_its_work_and_requeues_itself(
    tmp_path: Path, script: str
) -> None:
    bin_dir, record = stand_ins(tmp_path)
    shared = tmp_path / "shared, run (1)"  # a comma and brackets: Hydra syntax if unquoted
    env = slurm_env(tmp_path, bin_dir, record, shared)
    done = run_until_signalled(script, env, record, signal.SIGUSR1, [])
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert (record / "signals").read_text().split() == ["TERM"]  # stopped at a safe point
    requeues = [
        line for line in (record / "scontrol").read_text().splitlines() if "requeue" in line
    ]
    assert requeues == ["requeue 777"]  # this task's own job id, not the array's
    args = (record / "args").read_text().splitlines()
    assert f"output.experiments_dir='{shared}'" in args
    assert "s3cret" not in " ".join(args)


@pytest.mark.parametrize("script", ["hpo_array.sbatch", "train_multinode.sbatch"])
def test_a_sigterm_stops_the_work_without_a_requeue_of_its_own(tmp_path: Path, script: str) -> None:
    bin_dir, record = stand_ins(tmp_path)
    env = slurm_env(tmp_path, bin_dir, record, tmp_path / "shared")
    done = run_until_signalled(script, env, record, signal.SIGTERM, [])
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert (record / "signals").read_text().split() == ["TERM"]
    scontrol = record / "scontrol"
    assert not scontrol.exists() or "requeue" not in scontrol.read_text()  # Slurm's to do


def test_hydra_reads_the_quoted_experiments_dir_as_one_path(tmp_path: Path) -> None:
    shared = tmp_path / "shared, run (1)"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataaug_multi_both.cli.train",
            "--print-config",
            f"output.experiments_dir='{shared}'",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["output"]["experiments_dir"] == str(shared)
