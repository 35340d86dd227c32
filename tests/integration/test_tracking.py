"""MLflow tracking against a real `mlflow server` (and the local SQLite default)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from dataaug_multi_both.metric_names import TRAIN_METRIC_NAMES, VAL_METRIC_NAMES
from tests.integration.conftest import TINY, MlflowServer, free_port, read_jsonl, run_cli

pytestmark = pytest.mark.integration

DATA = ["dataset.synthetic_num_posts=30", "dataset.max_length=64", "dataset.doc_stride=8"]
FAST_RETRIES = [
    "tracking.max_retries=2",
    "tracking.retry_backoff_sec=0.2",
    "tracking.max_retry_wait_sec=2",
]
CONTRACT_PARAMS = {
    "model_id",
    "model_revision",
    "dataset_id",
    "dataset_revision",
    "learning_rate",
    "batch_size",
    "max_epochs",
    "optimization_metric",
    "seed_python",
    "seed_numpy",
    "seed_torch",
    "task_weight_criteria",
    "task_weight_evidence",
}


def run_of(uri: str, trial_id: str) -> Any:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("dataaug-multi-both")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.trial_id = 'trial_{trial_id}'"
    )
    assert len(runs) == 1
    return client, runs[0]


def steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_run_has_every_metric_param_tag_and_artifact(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    uri = mlflow_server.uri
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "2",
        *DATA,
        "output.trial_id=full",
        f"tracking.mlflow_tracking_uri={uri}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    client, run = run_of(uri, "full")
    expected = (
        set(TRAIN_METRIC_NAMES)
        | set(VAL_METRIC_NAMES)
        | {
            "system/checkpoint_size_mb",
            "system/disk_free_gb",
            "system/epoch_duration_sec",
        }
    )
    assert expected <= set(run.data.metrics)
    for key in expected:
        if key == "val/criteria_matcher/auc" and key not in run.data.metrics:
            continue
        assert steps(client, run.info.run_id, key) == [1, 2], key
    assert set(run.data.params) >= CONTRACT_PARAMS
    assert run.data.params["model_id"] == "tiny-bert" and run.data.params["max_epochs"] == "2"
    assert run.data.tags["framework"] == "pytorch" and run.data.tags["trial_id"] == "trial_full"
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.runName"] == "tiny-bert-full"
    assert run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "split_manifest.json", "train.jsonl"} <= artifacts
    assert not any(a.endswith(".pt") for a in artifacts)  # checkpoints are not uploaded by default


def test_resume_continues_the_same_run_without_duplicate_steps(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    uri = mlflow_server.uri
    tracking = f"tracking.mlflow_tracking_uri={uri}"
    first = run_cli(
        "train", *TINY, "--max-epochs", "2", *DATA, "output.trial_id=res", tracking, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    checkpoint = tmp_path / "experiments/trial_res/checkpoints/epoch_002.pt"
    resumed = run_cli(  # tracking comes from the user, never from the trial's config.yaml
        "train", "--resume-from", str(checkpoint), "--max-epochs", "3", tracking, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    client, run = run_of(uri, "res")
    for key in (
        "val/criteria_matcher/f1",
        "train/criteria_matcher/loss",
        "system/epoch_duration_sec",
    ):
        assert steps(client, run.info.run_id, key) == [1, 2, 3]


def test_unreachable_server_is_exit_5_fast(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "1",
        *DATA,
        f"tracking.mlflow_tracking_uri={closed}",
        *FAST_RETRIES,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 5
    assert closed in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 60
    assert not (tmp_path / "experiments").exists() or not list(
        (tmp_path / "experiments").glob("trial_*")
    )


def test_server_down_mid_run_then_resume_fills_the_history(tmp_path: Path) -> None:
    server = MlflowServer(tmp_path / "server")
    server.start()
    try:
        args = [
            sys.executable,
            "-m",
            "dataaug_multi_both.cli.train",
            *TINY,
            "--max-epochs",
            "4",
            *DATA,
            "output.trial_id=outage",
            f"tracking.mlflow_tracking_uri={server.uri}",
            *FAST_RETRIES,
        ]
        proc = subprocess.Popen(
            args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        log = tmp_path / "experiments/trial_outage/logs/train.jsonl"
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if log.is_file() and any(r["event"] == "epoch_end" for r in read_jsonl(log)):
                break
            time.sleep(0.05)
        server.stop()
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 5, stderr
        assert server.uri in stderr and "--resume-from" in stderr
        records = read_jsonl(log)
        done = [r["epoch"] for r in records if r["event"] == "epoch_end"]
        assert done and done == list(range(1, len(done) + 1))
        hint = shlex.split(stderr.split("--resume-from ")[1].splitlines()[0])
        assert Path(hint[0]).is_file()
        assert f"tracking.mlflow_tracking_uri={server.uri}" in hint  # the same server again

        server.start()
        resumed = run_cli("train", "--resume-from", *hint, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        client, run = run_of(server.uri, "outage")
        for key in (
            "val/criteria_matcher/f1",
            "system/epoch_duration_sec",
            "train/evidence_binder/loss",
        ):
            assert steps(client, run.info.run_id, key) == [1, 2, 3, 4], key
        assert run.info.status == "FINISHED"
        assert any(r["event"] == "tracking_backfill" for r in read_jsonl(log))
    finally:
        server.stop()


def test_local_default_store(tmp_path: Path) -> None:
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "1",
        "--dry-run",
        *DATA,
        "output.trial_id=local",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    db = tmp_path / "experiments" / "mlflow.db"
    assert db.is_file()
    client, run = run_of(f"sqlite:///{db}", "local")
    assert steps(client, run.info.run_id, "val/criteria_matcher/f1") == [1]


SECRET = "s3cr3t-Zebra-4711-do-not-leak"


class FakeVault(BaseHTTPRequestHandler):
    """The KV v2 read endpoint: GET /v1/<mount>/data/<path> with X-Vault-Token."""

    token = "vault-root-token"
    secrets: dict[str, dict[str, str]] = {
        "/v1/secret/data/mlflow": {"username": "alice", "password": SECRET}
    }

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.headers.get("X-Vault-Token") != self.token:
            self._reply(403, {"errors": ["permission denied"]})
        elif self.path.split("?")[0] in self.secrets:
            data = self.secrets[self.path.split("?")[0]]
            self._reply(
                200, {"data": {"data": data, "metadata": {"version": 1, "deletion_time": ""}}}
            )
        else:
            self._reply(404, {"errors": []})

    def _reply(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def vault() -> Any:
    server = HTTPServer(("127.0.0.1", 0), FakeVault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_vault_credentials_are_used_and_never_leak(
    mlflow_server: MlflowServer, vault: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(FakeVault.token)
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "1",
        *DATA,
        "output.trial_id=vault",
        f"tracking.mlflow_tracking_uri={mlflow_server.uri}",
        f"tracking.vault_addr={vault}",
        "tracking.vault_token_path=secret/mlflow",
        cwd=tmp_path,
        env={"VAULT_TOKEN_FILE": str(token_file), "VAULT_TOKEN": ""},
    )
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    for path in (tmp_path / "experiments").rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".jsonl"):
            assert SECRET not in path.read_text(errors="ignore"), path
    client, run = run_of(mlflow_server.uri, "vault")
    assert SECRET not in json.dumps(run.data.params) + json.dumps(run.data.tags)


@pytest.mark.parametrize(
    ("path", "token", "fragment"),
    [
        ("secret/missing", FakeVault.token, "no secret at secret/missing"),
        ("secret/mlflow", "wrong", "denied"),
    ],
)
def test_vault_errors_are_exit_5(
    vault: str, tmp_path: Path, path: str, token: str, fragment: str
) -> None:
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "1",
        "--dry-run",
        *DATA,
        "tracking.mlflow_tracking_uri=http://127.0.0.1:1",
        f"tracking.vault_addr={vault}",
        f"tracking.vault_token_path={path}",
        cwd=tmp_path,
        env={"VAULT_TOKEN": token},
    )
    assert result.returncode == 5 and fragment in result.stderr
    assert SECRET not in result.stderr


def test_vault_unreachable_is_exit_5(tmp_path: Path) -> None:
    result = run_cli(
        "train",
        *TINY,
        "--dry-run",
        *DATA,
        f"tracking.vault_addr=http://127.0.0.1:{free_port()}",
        "tracking.vault_token_path=secret/mlflow",
        cwd=tmp_path,
        env={"VAULT_TOKEN": "x"},
    )
    assert result.returncode == 5 and "unreachable" in result.stderr
