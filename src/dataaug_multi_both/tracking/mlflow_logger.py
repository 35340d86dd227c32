"""One MLflow run per training run: params, tags, per-epoch metrics, artifacts.

Every call to the tracking server goes through `call_with_retries` (exponential backoff
with jitter, bounded attempts and total wait); when retries are exhausted the caller gets a
TrackingError (exit 5) that names the URI. MLflow's own HTTP retries are turned down so that
this policy, not a 2-minute default, decides how long a dead server is waited for.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.tracking.destination import LOCAL_STORE, tracking_destination
from dataaug_multi_both.tracking.relocation import artifacts_root, follow_moved_tree
from dataaug_multi_both.tracking.retry import RetryPolicy, call_with_retries, redact
from dataaug_multi_both.tracking.transport import require_secure_transport
from dataaug_multi_both.tracking.vault import apply_credentials, read_mlflow_credentials

PERMANENT_ERRORS = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_DOES_NOT_EXIST",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "BAD_REQUEST",
}
_STEP_PROBE = "system/epoch_duration_sec"  # logged at every epoch: tells which steps exist
_warned: set[str] = set()  # a study builds a tracker per trial: each warning once per process


def _is_permanent(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) in PERMANENT_ERRORS


# A client of a local SQLite store, kept for the process: a study's worker makes a tracker
# per trial, and each new client opened its own SQLAlchemy engine and pool (about 70 ms and
# 12 KB that stayed allocated, per trial). A file store has no credentials to go stale.
_local_clients: dict[str, Any] = {}


def _forget_artifact_repository(run_id: str) -> None:
    """MLflow keeps each run's artifact repository, with its logging queue, locks and
    events, in a process-wide cache of up to 1,024 runs; a study's worker ends a run per
    trial and never logs to it again from this tracker (a resume opens a new one). Dropping
    the entry keeps the worker's memory flat (about 5 KB per trial otherwise, up to 1,024
    trials). A cache MLflow no longer has is nothing to drop."""
    try:
        from mlflow.tracking._tracking_service import utils
    except ImportError:
        return
    cache = getattr(utils, "_artifact_repos_cache", None)
    if isinstance(cache, dict):
        cache.pop(run_id, None)


class RunTracker:
    """Talks to MLflow for one run. Construct, then `start`; every method may raise
    TrackingError once its retries are exhausted."""

    def __init__(self, config: TrackingConfig, experiments_dir: Path) -> None:
        self.destination = tracking_destination(config, experiments_dir, os.environ)
        # before any connection: refuses credentials over plain http to another host
        checked = self.destination.applied_to(config)
        for warning in require_secure_transport(checked, os.environ, self.destination.source):
            if warning not in _warned:
                _warned.add(warning)
                print(f"warning: {warning}", file=sys.stderr)
        self.config = config
        self.uri = self.destination.uri
        self.experiments_dir = experiments_dir
        self.policy = RetryPolicy(
            config.max_retries, config.retry_backoff_sec, config.max_retry_wait_sec
        )
        self.run_id: str | None = None
        self._experiment_id: str | None = None
        # our policy governs retries; MLflow's own would wait up to minutes per call
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(config.request_timeout_sec)))
        if config.vault_addr and config.vault_token_path:
            apply_credentials(read_mlflow_credentials(config.vault_addr, config.vault_token_path))
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        from mlflow import MlflowClient

        for name in ("mlflow", "alembic"):  # after the import, which sets its own levels
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = _local_clients.get(self.uri) or MlflowClient(tracking_uri=self.uri)
        if self.uri.startswith("sqlite:"):  # one SQLAlchemy engine per store and process
            _local_clients[self.uri] = self.client
        if self.destination.source == LOCAL_STORE:  # a file here: no server to wait for
            self._call("follow a moved experiments tree", self._follow_moved_tree)

    @property
    def display_uri(self) -> str:
        return redact(self.uri)

    @property
    def where(self) -> str:
        """Where runs go, for the console: the URI without credentials, and its source when
        it is not the config (`... (from MLFLOW_TRACKING_URI)`)."""
        return self.destination.shown

    def _call(self, what: str, call: Any) -> Any:
        return call_with_retries(
            call, self.policy, f"MLflow tracking server {self.display_uri}: {what}", _is_permanent
        )

    def experiment_id(self) -> str:
        """The experiment named `tracking.experiment_name`, created if missing (this first
        call is also the reachability check: it fails fast with exit 5)."""
        name = self.config.experiment_name

        def get_or_create() -> str:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            location = None
            if self.uri.startswith("sqlite:///"):
                location = artifacts_root(self.experiments_dir)
            try:
                return str(self.client.create_experiment(name, artifact_location=location))
            except Exception as exc:  # another worker created it first
                if getattr(exc, "error_code", None) == "RESOURCE_ALREADY_EXISTS":
                    again = self.client.get_experiment_by_name(name)
                    if again is not None:
                        return str(again.experiment_id)
                raise

        found = str(self._call(f"get or create experiment {name!r}", get_or_create))
        self._experiment_id = found
        return found

    def _follow_moved_tree(self) -> None:
        """The local store moved with its tree: its artifact locations follow (relocation)."""
        root = artifacts_root(self.experiments_dir)
        for old in follow_moved_tree(Path(self.uri.removeprefix("sqlite:///")), root):
            shown = "".join(c if c.isprintable() else "?" for c in old)  # read from a file
            print(
                f"note: the experiments tree moved: MLflow artifact locations under {shown} "
                f"now point to {root}",
                file=sys.stderr,
                flush=True,
            )

    def start(
        self,
        run_id: str | None,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        parent_run_id: str | None = None,
    ) -> str:
        """Create the run, or reopen `run_id` after a resume; a `run_id` this store does not
        know (the trial was moved, the store is new) gets a new run, to which a resume then
        sends the whole history. Returns the run's id."""
        experiment_id = self._experiment_id or self.experiment_id()
        if run_id is not None and self.run_exists(run_id) and not self._foreign(run_id):
            self._call(
                f"reopen run {run_id}", lambda: self.client.update_run(run_id, status="RUNNING")
            )
            self.run_id = run_id
            return run_id
        all_tags = {
            "framework": "pytorch",
            "mlflow.source.type": "LOCAL",  # as the contract lists it (a local process)
            **tags,
            "mlflow.runName": run_name,
        }
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self._call(
            "create run",
            lambda: self.client.create_run(experiment_id, run_name=run_name, tags=all_tags),
        )
        self.run_id = str(run.info.run_id)
        self.log_params(params)
        return self.run_id

    def _foreign(self, run_id: str) -> bool:
        """A run of the local store (a file beside the trial, read back) whose artifacts
        live elsewhere: continuing it would upload the trial's files there. A new run
        takes the history instead (a server's runs are the server's business)."""
        if not self.uri.startswith("sqlite:") or self.owns_artifact_location(run_id):
            return False
        print(
            f"warning: MLflow run {run_id} keeps its artifacts outside "
            f"{self.experiments_dir / 'mlartifacts'}; the history goes to a new run",
            file=sys.stderr,
            flush=True,
        )
        return True

    def run_exists(self, run_id: str) -> bool:
        """False when this store has no such run (a moved trial, a new local store)."""

        def lookup() -> bool:
            try:
                self.client.get_run(run_id)
            except Exception as exc:
                if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
                    return False
                raise
            return True

        return bool(self._call(f"look up run {run_id}", lookup))

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
        for first in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            chunk = items[first : first + 100]
            self._call(
                "log params", lambda chunk=chunk: self.client.log_batch(self._run(), params=chunk)
            )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._call(
                f"set tag {key}", lambda k=key, v=value: self.client.set_tag(self._run(), k, v)
            )

    def tag_run(self, run_id: str, tags: Mapping[str, str], patient: bool = True) -> None:
        """Tags on another run of this store (a study's trial, from the parent's tracker);
        `patient=False`: one try, no retries (the server may be why the trial failed)."""
        policy = self.policy if patient else RetryPolicy(0, self.policy.backoff_sec, 0)
        for key, value in tags.items():

            def tag(k: str = key, v: str = value) -> None:
                self.client.set_tag(run_id, k, v)

            what = f"MLflow tracking server {self.display_uri}: tag run {run_id}"
            call_with_retries(tag, policy, what, _is_permanent)

    def log_metrics(self, step: int, metrics: Mapping[str, float | None]) -> None:
        """One epoch's metrics at `step`; None and non-finite values are not sent."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, step)
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        for first in range(0, len(batch), 1000):
            chunk = batch[first : first + 1000]
            self._call(
                f"log metrics of step {step}",
                lambda c=chunk: self.client.log_batch(self._run(), metrics=c),
            )

    def logged_steps(self, key: str = _STEP_PROBE) -> set[int]:
        history = self._call(
            f"read history of {key}", lambda: self.client.get_metric_history(self._run(), key)
        )
        return {int(m.step) for m in history}

    def log_artifacts(self, paths: Iterable[Path], artifact_path: str | None = None) -> None:
        for path in paths:
            if path.is_file():
                self._call(
                    f"upload {path.name}",
                    lambda p=path: self.client.log_artifact(self._run(), str(p), artifact_path),
                )

    def owns_artifact_location(self, run_id: str) -> bool:
        """The run stores its artifacts where this store does: through this server
        (`mlflow-artifacts:`), or under the local store's `mlartifacts/`. A run record read
        from a store beside a trial may name any address: uploading there would send the
        files, and the credentials, wherever it says."""
        from urllib.parse import unquote, urlparse

        uri = str(self._call("read the run", lambda: self.client.get_run(run_id).info.artifact_uri))
        if uri.startswith("mlflow-artifacts:"):
            return True
        parsed = urlparse(uri)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            return False
        root = (self.experiments_dir / "mlartifacts").resolve()
        return Path(unquote(parsed.path)).resolve().is_relative_to(root)

    def log_directory(self, directory: Path, artifact_path: str) -> None:
        """Every file of `directory` under `artifact_path` of the run (an export)."""
        self._call(
            f"upload {directory.name}",
            lambda: self.client.log_artifacts(self._run(), str(directory), artifact_path),
        )

    def register(self, name: str, artifact_path: str) -> str:
        """A new version of the registered model `name` from the run's `artifact_path`; its
        version number. A store without a model registry is a TrackingError (exit 5)."""

        def create() -> str:
            from mlflow.exceptions import MlflowException

            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:  # it exists already: add a version
                if "RESOURCE_ALREADY_EXISTS" not in str(getattr(exc, "error_code", "")):
                    raise
            run = self._run()
            version = self.client.create_model_version(
                name, f"runs:/{run}/{artifact_path}", run_id=run
            )
            return str(version.version)

        return str(self._call(f"register model {name}", create))

    def finish(self, status: str = "FINISHED") -> None:
        self._call(f"end run ({status})", lambda: self._terminate(status))
        _forget_artifact_repository(self._run())

    def _terminate(self, status: str) -> None:
        """End the run; MLflow prints the run's URL (with any password in the tracking URI)
        to stdout: it is printed here without it."""
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            self.client.set_terminated(self._run(), status)
        for line in printed.getvalue().splitlines():
            print(redact(line), flush=True)

    def _run(self) -> str:
        assert self.run_id is not None, "start() first"
        return self.run_id
