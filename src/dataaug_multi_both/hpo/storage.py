"""Optuna storage: the study database (SQLite next to the study, or PostgreSQL shared by
several workers), with heartbeats so that a killed worker's trial is failed and retried."""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from dataaug_multi_both.checkpointing.lock import waiting_lock
from dataaug_multi_both.errors import StorageError, StudyStorageError, first_line
from dataaug_multi_both.layout import SETUP_LOCK_SUFFIX, STUDY_DB
from dataaug_multi_both.redaction import (
    is_redacted,
    redact_text,
    redact_url,
    sqlalchemy_misreads,
    url_secrets,
)
from dataaug_multi_both.tracking.transport import is_loopback

T = TypeVar("T")


STUDY_DIR_FIELD = "{study_dir}"  # in study.storage: sqlite:///{study_dir}/optuna.db
STORAGE_ENV = "DATAAUG_STUDY_STORAGE"  # the full storage URL, for one with a password


def resolve_storage_url(
    study_dir: Path, configured: str | None = None, recorded: str | None = None
) -> str:
    """The study's storage URL, in this order: $DATAAUG_STUDY_STORAGE; the configured
    `study.storage` unless its password was redacted (the config.yaml a resume reads); the
    URL study.json recorded, unless it is a SQLite file while the study directory holds its
    own database (a moved study) or its password was redacted; the study directory's SQLite
    database."""
    import os

    if os.environ.get(STORAGE_ENV):
        return storage_url(os.environ[STORAGE_ENV], study_dir)
    if configured and not is_redacted(configured):
        return storage_url(configured, study_dir)
    recorded = recorded or configured  # a redacted study.storage is only a record of one
    local = (study_dir / STUDY_DB).is_file()
    if recorded and not (local and recorded.startswith("sqlite")):
        if is_redacted(recorded):
            if local:
                return storage_url(None, study_dir)
            raise StudyStorageError(
                f"the study's storage {redact_url(recorded)} is recorded without its password: "
                f"give the full URL in ${STORAGE_ENV} or as study.storage=..."
            )
        if not stays_on_this_machine(recorded, study_dir):
            raise StudyStorageError(
                f"study.json records the storage {redact_url(recorded)}: a study directory does "
                "not choose which database server is contacted (the database client would send "
                f"your credentials there); give the URL in ${STORAGE_ENV} or as study.storage=..."
            )
        return storage_url(recorded, study_dir)
    return storage_url(None, study_dir)


def stays_on_this_machine(url: str, study_dir: Path) -> bool:
    """A database server on this machine (loopback or a Unix socket), or a SQLite file inside
    the study's directory (`sqlite:///{study_dir}/optuna.db`); never a file elsewhere."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(storage_url(url, study_dir))
    except (ArgumentError, ValueError):
        return False
    if parsed.get_backend_name() == "sqlite":
        database = Path(parsed.database or "")
        return database.is_absolute() and database.resolve().is_relative_to(study_dir.resolve())
    return not parsed.host or is_loopback(parsed.host)


def storage_url(configured: str | None, study_dir: Path) -> str:
    """The SQLAlchemy URL: the default SQLite file, or the configured URL with a driver."""
    if not configured:
        return f"sqlite:///{(study_dir / STUDY_DB).resolve()}"
    configured = configured.replace(STUDY_DIR_FIELD, str(study_dir.resolve()))
    if configured.startswith("postgresql://") or configured.startswith("postgres://"):
        return "postgresql+psycopg2://" + configured.split("://", 1)[1]
    return configured


def own_database_file(url: str, study_dir: Path) -> str | None:
    """The name of the SQLite file `url` names when it lies in `study_dir`, else None."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return path.name if path.parent == study_dir.resolve() else None


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused database connection, also when it surfaces wrapped in another error
    (Optuna 5 can raise an UnboundLocalError while handling one in `optimize`)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, bounded
        if seen is None:
            return False
        if isinstance(seen, OperationalError) or (
            isinstance(seen, DBAPIError) and seen.connection_invalidated
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def storage_env_note() -> str | None:
    """For `--print-config`, which shows `study.storage` as configured: a line saying that
    $DATAAUG_STUDY_STORAGE (password masked) comes first; None when it is not set."""
    import os

    value = os.environ.get(STORAGE_ENV, "")
    if not value:
        return None
    return f"note: the study storage is ${STORAGE_ENV} ({redact_url(value)}), not study.storage"


def with_connection_retry(call: Callable[[], T], what: str, url: str, budget_sec: float) -> T:
    """Retry `call` while the database is unreachable, for at most `budget_sec` seconds;
    then StudyStorageError (exit 3) naming the storage. A value Optuna cannot read (a
    database edited by hand) is the same error at once, not a traceback."""
    deadline = time.monotonic() + budget_sec
    pause = 0.5
    while True:
        try:
            return call()
        except (TypeError, ValueError) as exc:  # an edited database: a trial number as text
            raise StudyStorageError(
                f"cannot {what}: study storage {redact_url(url)} holds a value Optuna cannot "
                f"read ({type(exc).__name__}); was the database edited?"
            ) from exc
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise StudyStorageError(
                    f"study storage {redact_url(url)} unreachable for {budget_sec:.0f}s while trying to {what}: "
                    f"{redact_text(first_line(exc), url_secrets(url))[:200]}"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 8.0)


def open_storage(
    url: str, heartbeat_interval: int, grace_period: int, connection_retry_sec: float
) -> Any:
    """An RDBStorage with heartbeats; a stale trial (worker killed) is failed and re-queued
    once with the same parameters (RetryHeartbeatStaleTrialCallback, Optuna 5)."""
    import optuna

    refuse_misread(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}

    def create() -> Any:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )

    try:
        return with_connection_retry(create, "open the study storage", url, connection_retry_sec)
    except StudyStorageError:
        raise
    except Exception as exc:  # bad URL, missing driver, refused credentials
        raise _cannot_open(url, exc) from None


def refuse_misread(url: str) -> None:
    if sqlalchemy_misreads(url):  # it would send part of the password as the host name
        raise StudyStorageError(
            f"cannot open study storage {redact_url(url)}: its password holds an unencoded '@' "
            "(or the URL another '@' after it): percent-encode each '@' after the user name as %40"
        )


def _cannot_open(url: str, exc: BaseException) -> StudyStorageError:
    return StudyStorageError(
        f"cannot open study storage {redact_url(url)}: {type(exc).__name__}: "
        f"{redact_text(first_line(exc), url_secrets(url))[:200]}"
    )


SETUP_WAIT_SEC = 900.0  # another worker's set-up (data loading included) may take minutes


def _advisory_key(study_name: str) -> int:
    """A 64-bit PostgreSQL advisory-lock key of its own for each study name."""
    digest = hashlib.sha256(f"dataaug-multi-both:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def setup_lock(
    url: str, study_name: str, connection_retry_sec: float, on_wait: Callable[[], None]
) -> Iterator[None]:
    """Serialise the set-up of one study across the workers that start it: from opening the
    storage (Optuna creates its tables in a fresh database; concurrently, PostgreSQL refuses
    all but one with a UniqueViolation) through creating the study, recording its id and
    writing study.json; a worker whose start fails takes back what it made while it still
    holds the lock, so no other worker is using it. PostgreSQL: a session-level advisory lock
    per study name, freed by the server if the worker dies; a SQLite file: a `flock` on a
    file beside it. Waits at most SETUP_WAIT_SEC (`on_wait` once), then StudyStorageError."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        lock_file = path.with_name(path.name + SETUP_LOCK_SUFFIX)
        try:
            with waiting_lock(lock_file, SETUP_WAIT_SEC, on_wait):
                yield
        except StorageError as exc:
            raise StudyStorageError(exc.message) from None
        return
    if not url.startswith(("postgresql", "postgres:")):
        yield
        return
    import sqlalchemy

    refuse_misread(url)
    key = {"key": _advisory_key(study_name)}

    def connect() -> Any:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        return engine.connect()

    try:
        connection = with_connection_retry(
            connect, "lock the study for set-up", url, connection_retry_sec
        )
    except StudyStorageError:
        raise
    except Exception as exc:
        raise _cannot_open(url, exc) from None
    try:
        deadline = time.monotonic() + SETUP_WAIT_SEC
        try_lock = sqlalchemy.text("SELECT pg_try_advisory_lock(:key)")
        waited = False
        while not connection.execute(try_lock, key).scalar():
            if time.monotonic() > deadline:
                raise StudyStorageError(
                    f"another worker has been setting up study {study_name!r} for "
                    f"{SETUP_WAIT_SEC:.0f}s (PostgreSQL advisory lock {key['key']}); if none "
                    "is starting, that worker is stuck: stop it"
                )
            if not waited:
                on_wait()
                waited = True
            time.sleep(0.5)
        yield
    finally:
        with contextlib.suppress(Exception):  # closing the session frees the lock anyway
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), key)
        with contextlib.suppress(Exception):
            connection.close()


def quiet_lost_connection(args: threading.ExceptHookArgs) -> None:
    """Optuna's heartbeat thread dies with a traceback when the database goes away; the
    main thread reports that (retry, then exit 3), so one line is enough here."""
    if args.exc_value is not None and is_connection_error(args.exc_value):
        print("warning: a heartbeat could not reach the study storage", file=sys.stderr)
        return
    threading.__excepthook__(args)
