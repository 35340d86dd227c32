from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    command: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600
) -> Completed:
    """Run `python -m dataaug_multi_both.cli.<command> args...` as a real subprocess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", f"dataaug_multi_both.cli.{command}", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


# Runs a command with its address space limited to what it has mapped after importing its
# libraries plus `extra_mb`: a real allocation failure, as on a full GPU, on the CPU.
# Nothing is imported under the limit (OpenBLAS spins forever on a failed allocation there).
MEMORY_LIMITED = """
import os, resource, runpy, sys
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch, transformers, optuna, scipy.optimize, pandas, pyarrow, datasets
command, extra_mb = sys.argv[1], int(sys.argv[2])
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + extra_mb * 2**20, size + extra_mb * 2**20))
sys.argv = [command, *sys.argv[3:]]
runpy.run_module(f"dataaug_multi_both.cli.{command}", run_name="__main__", alter_sys=True)
"""


def run_cli_memory_limited(command: str, extra_mb: int, *args: str, cwd: Path) -> Completed:
    """`run_cli` under a memory limit of `extra_mb` MiB above the imported libraries."""
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED, command, str(extra_mb), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def popen_cli(command: str, *args: str, cwd: Path) -> subprocess.Popen:
    """`run_cli` started in the background (output piped, as text)."""
    return subprocess.Popen(
        [sys.executable, "-m", f"dataaug_multi_both.cli.{command}", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def only_trial_dir(experiments: Path) -> Path:
    dirs = sorted(p for p in experiments.iterdir() if p.name.startswith("trial_"))
    assert len(dirs) == 1, dirs
    return dirs[0]


TINY = ["--model", "tiny-bert", "--dataset", "synthetic"]
HPO_SMALL = str(REPO / "configs" / "hpo_small.yaml")  # the small TPE study the tests run
# a one-epoch tiny-bert study on 30 synthetic posts (add the tracking you want)
TINY_STUDY = [
    "search_space.model_id.choices=[tiny-bert]",
    "dataset.synthetic_num_posts=30",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.max_epochs=1",
    "trainer.num_threads=1",
]
SMALL_DATA = ["dataset.synthetic_num_posts=60", "dataset.max_length=96", "dataset.doc_stride=16"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, artifacts in a temp dir)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        import time
        import urllib.request

        self.root.mkdir(parents=True, exist_ok=True)
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 (lives as long as the server)
        self.proc = subprocess.Popen(
            [
                str(mlflow_bin),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited: {(self.root / 'server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not come up")

    def stop(self) -> None:
        import os
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    yield server
    server.stop()


class PostgresServer:
    """A throwaway PostgreSQL cluster (Debian's binaries: initdb + pg_ctl) on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()

    @staticmethod
    def binary(name: str) -> str:
        import shutil

        found = shutil.which(name) or next(
            iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
        )
        if found is None:
            pytest.skip(
                f"PostgreSQL's {name} is not installed (run `make postgres` once: it installs "
                "Debian's postgresql package)"
            )
        return str(found)

    def _as_owner(self, *args: str) -> list[str]:
        # initdb and postgres refuse to run as root: use the postgres account then
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil_chown(self.root)
        subprocess.run(
            self._as_owner(
                self.binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
            ),
            check=True,
            capture_output=True,
        )
        self.pg_ctl(
            "start", "-w", "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        )
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE optuna")
        connection.close()

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            self._as_owner(
                self.binary("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), *args
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/optuna"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("stop", "-m", "immediate", "-w")


def shutil_chown(path: Path) -> None:
    import shutil

    shutil.chown(path, user="postgres", group="postgres")
    for parent in path.parents:  # the cluster's owner must be able to reach its directory
        if str(parent) in ("/", "/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o011)


@pytest.fixture
def postgres(tmp_path: Path) -> Any:
    server = PostgresServer(tmp_path / "pg")
    server.start()
    yield server
    server.stop()
