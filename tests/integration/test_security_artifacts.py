"""Trial and study directories are passed around: what they contain must not redirect the
user's credentials, read the environment into outputs, or let two processes share a trial."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import torch
import yaml

from dataaug_multi_both.checkpointing import lock as trial_lock
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.store import verifies
from tests.integration.conftest import HPO_SMALL, TINY_STUDY, MlflowServer, popen_cli, run_cli

pytestmark = pytest.mark.integration

TOKEN = "s3cret-vault-token-do-not-send"
TINY_RUN = [
    "--model",
    "tiny-bert",
    "--dataset",
    "synthetic",
    "dataset.synthetic_num_posts=30",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.num_threads=1",
    "tracking.backend=none",
]


class Recorder(BaseHTTPRequestHandler):
    """A stand-in for a Vault or MLflow server that an artifact points at: records every
    request and whether it carried a credential."""

    requests: list[dict[str, str]] = []

    def _record(self) -> None:
        type(self).requests.append({"path": self.path, **dict(self.headers)})
        self.send_response(404)
        self.end_headers()

    do_GET = do_POST = do_PUT = _record  # noqa: N815 (http.server's naming)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    Recorder.requests = []
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.requests
    server.shutdown()


def plant_tracking(config: Path, address: str) -> None:
    data = yaml.safe_load(config.read_text())
    data["tracking"].update(
        backend="mlflow",
        mlflow_tracking_uri=address,
        vault_addr=address,
        vault_token_path="secret/mlflow",
    )
    config.write_text(yaml.safe_dump(data))


def test_a_planted_tracking_config_in_a_study_never_receives_the_token(
    tmp_path: Path, recorder: tuple[str, list[dict[str, str]]]
) -> None:
    """`hpo --resume-study`, `train --resume-from` and `evaluate_study` read the study's and
    the trial's config.yaml; tracking.* pointing at another server must not be followed."""
    address, requests = recorder
    first = run_cli("hpo", "--config", HPO_SMALL, "--num-trials", "1", *TINY_STUDY, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    experiments = tmp_path / "experiments"
    study_dir = next(experiments.glob("study_*"))
    trial_dir = next(experiments.glob("trial_*"))  # the study's one trial
    plant_tracking(study_dir / "config.yaml", address)
    plant_tracking(trial_dir / "config.yaml", address)
    env = {"VAULT_TOKEN": TOKEN}

    evaluated = run_cli("evaluate_study", "--study-dir", str(study_dir), cwd=tmp_path, env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    resumed = run_cli(
        "hpo", "--resume-study", study_dir.name, "--num-trials", "2", cwd=tmp_path, env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    standalone = run_cli(
        "train", *TINY_RUN, "--max-epochs", "1", "output.trial_id=solo", cwd=tmp_path
    )
    assert standalone.returncode == 0, standalone.stderr
    solo = experiments / "trial_solo"
    plant_tracking(solo / "config.yaml", address)
    continued = run_cli(
        "train",
        "--resume-from",
        str(solo / "checkpoints" / "epoch_001.pt"),
        "--max-epochs",
        "2",
        cwd=tmp_path,
        env=env,
    )
    assert continued.returncode == 0, continued.stderr
    said = " ".join(continued.stdout.split())  # the console wraps long lines
    assert "note: where credentials go is never taken from config.yaml" in said
    assert f"tracking.vault_addr: recorded '{address}', used ''" in said

    assert requests == []  # nothing went to the planted address, token or not
    for result in (evaluated, resumed, continued):
        assert TOKEN not in result.stdout + result.stderr
    # the user's tracking (the defaults: a local store) was used, and written back as such
    assert yaml.safe_load((solo / "config.yaml").read_text())["tracking"]["vault_addr"] == ""


def test_environment_interpolation_is_refused_and_never_echoed(tmp_path: Path) -> None:
    env = {"VAULT_TOKEN": TOKEN}
    override = run_cli(
        "train",
        *TINY_RUN,
        "--dry-run",
        "tracking.experiment_name=${oc.env:VAULT_TOKEN}",
        cwd=tmp_path,
        env=env,
    )
    config = tmp_path / "leaky.yaml"
    config.write_text(
        "defaults:\n  - train\n  - _self_\ntracking:\n  experiment_name: x-${oc.env:VAULT_TOKEN}\n"
    )
    in_file = run_cli(
        "train", "--config", str(config), *TINY_RUN, "--dry-run", cwd=tmp_path, env=env
    )
    assert "tracking.experiment_name (override)" in override.stderr
    assert "tracking.experiment_name (leaky.yaml or override)" in in_file.stderr
    for result in (override, in_file):
        assert result.returncode == 2, result.stderr
        assert "oc.env" in result.stderr and "Traceback" not in result.stderr
        assert TOKEN not in result.stdout + result.stderr
    assert not (tmp_path / "experiments").exists()  # refused before anything was written


def test_a_second_train_on_a_running_trial_stops_at_once(tmp_path: Path) -> None:
    args = [*TINY_RUN, "--max-epochs", "6", "output.trial_id=shared"]
    first = popen_cli("train", *args, cwd=tmp_path)
    trial_dir = tmp_path / "experiments" / "trial_shared"
    deadline = time.monotonic() + 120
    while not trial_lock.is_running(trial_dir):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.1)
    started = time.monotonic()
    second = run_cli("train", *args, cwd=tmp_path)
    assert second.returncode == 2, second.stderr
    assert "trial_shared is in use by another process (pid" in second.stderr
    assert time.monotonic() - started < 60 and first.poll() is None  # stopped at once
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    manifest = CheckpointManifest.read(trial_dir / "checkpoints")
    assert manifest is not None and manifest.retained()
    for record in manifest.retained():
        assert verifies(trial_dir / "checkpoints" / record.file, record.sha256)
    assert not trial_lock.is_running(trial_dir)
    # a finished trial is not trained into again from scratch (two runs in one manifest)
    again = run_cli("train", *args, cwd=tmp_path)
    assert again.returncode == 2 and "trial_shared already holds checkpoints" in again.stderr
    assert "--resume-from" in again.stderr
    after = CheckpointManifest.read(trial_dir / "checkpoints")
    assert after is not None and after.to_dict() == manifest.to_dict()


def test_a_killed_trains_lock_never_blocks_the_resume(tmp_path: Path) -> None:
    args = [*TINY_RUN, "--max-epochs", "3", "output.trial_id=killed"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataaug_multi_both.cli.train", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = tmp_path / "experiments" / "trial_killed" / "checkpoints"
    deadline = time.monotonic() + 180
    while not (checkpoints / "manifest.json").is_file():  # a checkpoint and its record
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (checkpoints.parent / ".lock").is_file()  # left behind, and no longer held
    manifest = CheckpointManifest.read(checkpoints)
    assert manifest is not None and (latest := manifest.latest("resume")) is not None
    resumed = run_cli("train", "--resume-from", str(checkpoints / latest.file), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_a_manifest_cannot_redirect_the_run_directory(tmp_path: Path) -> None:
    """A manifest next to checkpoints kept outside the trial names the trial directory; one
    outside the experiments directory is ignored (nothing is written there)."""
    elsewhere = tmp_path / "checkpoints-elsewhere"
    first = run_cli(
        "train",
        *TINY_RUN,
        "--max-epochs",
        "1",
        "--checkpoint-dir",
        str(elsewhere),
        "output.trial_id=moved",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    manifest = json.loads((elsewhere / "manifest.json").read_text())
    target = tmp_path / "outside" / "trial_moved"
    target.mkdir(parents=True)
    manifest["trial_dir"] = str(target)
    (elsewhere / "manifest.json").write_text(json.dumps(manifest))
    resumed = run_cli(
        "train",
        "--resume-from",
        str(elsewhere / "epoch_001.pt"),
        *TINY_RUN,
        "--max-epochs",
        "2",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert list(target.iterdir()) == []  # no .lock, config.yaml or logs planted there


def test_a_password_in_the_tracking_uri_is_written_nowhere(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    password = "hunter2-in-the-uri"
    uri = mlflow_server.uri.replace("http://", f"http://alice:{password}@")
    result = run_cli(
        "train",
        *TINY_RUN[:-1],  # with tracking
        "--max-epochs",
        "1",
        f"tracking.mlflow_tracking_uri={uri}",
        "output.trial_id=uri",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr
    trial = tmp_path / "experiments" / "trial_uri"
    for path in trial.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    payload = torch.load(trial / "checkpoints" / "epoch_001.pt", weights_only=True)
    assert "alice:***@" in payload["config"]["tracking"]["mlflow_tracking_uri"]


def test_a_study_database_of_another_study_is_not_resumed(tmp_path: Path) -> None:
    """A study database whose attributes name another study's id would make retention release
    that study's trials: resuming refuses it."""
    for name in ("mine", "other"):
        made = run_cli(
            "hpo",
            "--config",
            HPO_SMALL,
            "--study-name",
            name,
            "--num-trials",
            "1",
            *TINY_STUDY,
            "tracking.backend=none",
            cwd=tmp_path,
        )
        assert made.returncode == 0, made.stderr
    experiments = tmp_path / "experiments"
    by_name = {
        json.loads((d / "study.json").read_text())["name"]: d for d in experiments.glob("study_*")
    }
    mine, other = by_name["mine"], by_name["other"]
    import optuna

    planted = optuna.load_study(study_name="mine", storage=f"sqlite:///{mine / 'optuna_study.db'}")
    other_id = json.loads((other / "study.json").read_text())["study_id"].removeprefix("study_")
    planted.set_user_attr("study_id", other_id)  # the database now claims the other study
    before = sorted(p.name for p in experiments.rglob("*.pt"))
    resumed = run_cli(
        "hpo",
        "--resume-study",
        mine.name,
        "--num-trials",
        "2",
        "tracking.backend=none",
        cwd=tmp_path,
    )
    assert resumed.returncode == 3, resumed.stderr
    assert "belongs to study" in resumed.stderr and "Traceback" not in resumed.stderr
    assert sorted(p.name for p in experiments.rglob("*.pt")) == before
