"""Tokens never travel over plain HTTP to another host, nor along a redirect.

Real HTTP servers on 127.0.0.1 stand in for Vault and MLflow; the non-loopback address
10.255.255.1 is never contacted (an audit hook on socket.connect in the CLI process checks
that the refusal comes before any connection).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.errors import ConfigError, TrackingError
from dataaug_multi_both.tracking.mlflow_logger import RunTracker
from dataaug_multi_both.tracking.vault import read_mlflow_credentials
from tests.integration.conftest import TINY, Completed, run_cli

pytestmark = pytest.mark.integration

REMOTE_HTTP = "http://10.255.255.1:8200"  # non-loopback, never contacted
VAULT_TOKEN = "hvs.vault-token-7731"
SECRET = "redirected-secret-5150"
Answer = Callable[[BaseHTTPRequestHandler], tuple[int, dict, dict]]  # status, headers, body
DATA = ["dataset.synthetic_num_posts=30", "dataset.max_length=64", "dataset.doc_stride=8"]


@contextmanager
def http_stub(answer: Answer) -> Iterator[Any]:
    """A server on 127.0.0.1 (any port) that records each request's method, path and headers
    and answers `answer(handler)` = (status, extra headers, JSON body)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
            status, headers, body = answer(self)
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = _handle  # noqa: N815 (http.server's naming)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    server.seen = seen  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def secret_holder(handler: BaseHTTPRequestHandler) -> tuple[int, dict, dict]:
    """Where the redirect points: it would hand out the secret to whoever asks."""
    data = {"username": "alice", "password": SECRET}
    return 200, {}, {"data": {"data": data, "metadata": {"version": 1, "deletion_time": ""}}}


def refuser(handler: BaseHTTPRequestHandler) -> tuple[int, dict, dict]:
    return 403, {}, {"error_code": "PERMISSION_DENIED", "message": "who are you?"}


@contextmanager
def redirecting_pair(second_answer: Answer = secret_holder) -> Iterator[tuple[Any, Any]]:
    """(first, second): `first` answers every request with a 307 to the same path on
    `second`, another server on another port."""
    with (
        http_stub(second_answer) as second,
        http_stub(lambda h: (307, {"Location": f"{second.url}{h.path}"}, {})) as first,
    ):
        yield first, second


def header(request: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in request["headers"].items() if k.lower() == name.lower()), None)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """RunTracker sets MLflow's variables with setdefault: monkeypatch restores them."""
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    return monkeypatch


def test_vault_redirect_is_not_followed_with_the_token(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("VAULT_TOKEN", VAULT_TOKEN)
    with redirecting_pair() as (vault, elsewhere):
        with pytest.raises(TrackingError) as caught:
            read_mlflow_credentials(vault.url, "secret/mlflow", timeout=5)
        assert header(vault.seen[0], "X-Vault-Token") == VAULT_TOKEN  # the stub was asked
        assert not any(header(r, "X-Vault-Token") for r in elsewhere.seen)
        assert elsewhere.seen == []
    assert "redirect" in caught.value.message and "not followed" in caught.value.message
    assert caught.value.exit_code == 5


def test_train_cli_vault_redirect_is_exit_5_and_the_token_stays(tmp_path: Path) -> None:
    with redirecting_pair() as (vault, elsewhere):
        result = run_cli(
            "train",
            *TINY,
            "--max-epochs",
            "1",
            "--dry-run",
            *DATA,
            f"tracking.vault_addr={vault.url}",
            "tracking.vault_token_path=secret/mlflow",
            cwd=tmp_path,
            env={"VAULT_TOKEN": VAULT_TOKEN},
        )
        assert vault.seen and not any(header(r, "X-Vault-Token") for r in elsewhere.seen)
    assert result.returncode == 5, result.stderr
    assert "redirect" in result.stderr and "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "env", "key"),
    [
        ({"vault_addr": REMOTE_HTTP, "vault_token_path": "secret/mlflow"}, {}, "vault_addr"),
        (
            {"mlflow_tracking_uri": "http://10.255.255.1:5000"},
            {"MLFLOW_TRACKING_TOKEN": "mlflow-token"},
            "mlflow_tracking_uri",
        ),
    ],
)
def test_tracker_refuses_credentials_over_plain_http_fast(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    values: dict[str, str],
    env: dict[str, str],
    key: str,
) -> None:
    clean_env.setenv("VAULT_TOKEN", VAULT_TOKEN)
    for name, value in env.items():
        clean_env.setenv(name, value)
    config = TrackingConfig(**values, max_retries=0)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        RunTracker(config, tmp_path)
    assert time.monotonic() - started < 2.0  # the default request timeout is 10 s
    assert f"tracking.{key}" in caught.value.message and "https://" in caught.value.message


def test_mlflow_redirect_to_another_port_drops_the_token(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """requests strips Authorization when a redirect changes host, port or scheme; this
    guards that MLflow's bearer token relies on that and does not follow it elsewhere."""
    clean_env.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-bearer-4242")
    with redirecting_pair(refuser) as (mlflow, elsewhere):
        config = TrackingConfig(mlflow_tracking_uri=mlflow.url, max_retries=0)
        with pytest.raises(TrackingError):
            RunTracker(config, tmp_path).experiment_id()
        assert header(mlflow.seen[0], "Authorization") == "Bearer mlflow-bearer-4242"
        assert elsewhere.seen, "the redirect was followed (without the token)"
        assert not any(header(r, "Authorization") for r in elsewhere.seen)


# The train CLI in a process whose every socket.connect is written to $CONNECT_LOG.
WATCHED_TRAIN = """
import json, os, runpy, sys
log = open(os.environ["CONNECT_LOG"], "a")
def on_event(event, args):
    if event == "socket.connect":
        log.write(json.dumps(str(args[1])) + "\\n")
        log.flush()
sys.addaudithook(on_event)
sys.argv = ["train", *sys.argv[1:]]
runpy.run_module("dataaug_multi_both.cli.train", run_name="__main__")
"""


def run_watched_train(
    tmp_path: Path, *overrides: str, env: dict[str, str]
) -> tuple[Completed, str]:
    connects = tmp_path / "connects.log"
    connects.touch()
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "CONNECT_LOG": str(connects), **env}
    args = [*TINY, "--max-epochs", "1", "--dry-run", *DATA, *overrides]
    proc = subprocess.run(
        [sys.executable, "-c", WATCHED_TRAIN, *args],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr), connects.read_text()


def test_train_cli_refuses_plain_http_vault_before_any_connection(tmp_path: Path) -> None:
    result, connects = run_watched_train(
        tmp_path,
        f"tracking.vault_addr={REMOTE_HTTP}",
        "tracking.vault_token_path=secret/mlflow",
        env={"VAULT_TOKEN": VAULT_TOKEN},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: tracking.vault_addr="), lines
    assert "https://" in lines[0] and "allow_insecure_http" in lines[0]
    assert "10.255.255.1" not in connects
    assert VAULT_TOKEN not in result.stdout + result.stderr


def test_allow_insecure_http_warns_then_proceeds(tmp_path: Path) -> None:
    """Allowed, the run goes on to read the Vault token, which is missing here: that error
    (exit 5) comes after the warning, still before any connection."""
    result, connects = run_watched_train(
        tmp_path,
        f"tracking.vault_addr={REMOTE_HTTP}",
        "tracking.vault_token_path=secret/mlflow",
        "tracking.allow_insecure_http=true",
        env={"VAULT_TOKEN": "", "VAULT_TOKEN_FILE": ""},
    )
    assert result.returncode == 5, result.stderr
    lines = result.stderr.strip().splitlines()
    warning = next(line for line in lines if line.startswith("warning: tracking.vault_addr="))
    assert "allowed by tracking.allow_insecure_http" in warning
    assert lines[-1].startswith("error:") and "VAULT_TOKEN" in lines[-1]
    assert "10.255.255.1" not in connects


def test_a_resume_never_uploads_where_a_planted_run_record_points(tmp_path: Path) -> None:
    """The local store beside the trials is a file read back: a run record rewritten to keep
    its artifacts elsewhere (a bucket, another directory) must not receive the trial's files
    and checkpoint on resume; the history goes to a new run of the store instead."""
    import sqlite3

    args = [*TINY, *DATA, "trainer.num_threads=1", "output.trial_id=planted"]
    first = run_cli("train", *args, "--max-epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    outside = tmp_path / "outside"
    database = tmp_path / "experiments" / "mlflow.db"
    with sqlite3.connect(database) as db:
        db.execute("UPDATE runs SET artifact_uri = ?", (outside.as_uri(),))
    resumed = run_cli(
        "train",
        "--resume-from",
        str(tmp_path / "experiments" / "trial_planted"),
        "--max-epochs",
        "2",
        "tracking.log_checkpoints=true",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert not outside.exists(), sorted(outside.rglob("*"))
    assert "keeps its artifacts outside" in resumed.stderr
    with sqlite3.connect(database) as db:
        runs = db.execute("SELECT run_uuid, artifact_uri FROM runs").fetchall()
    assert len(runs) == 2  # the planted run is left as it was; a new one has the history
    fresh = [uri for _, uri in runs if uri != outside.as_uri()]
    assert fresh and fresh[0].startswith((tmp_path / "experiments" / "mlartifacts").as_uri())
