"""A local store that moved with its experiments tree.

MLflow keeps absolute artifact locations: `create_experiment` resolves a relative one against
the working directory of the moment (`mlflow.utils.uri.resolve_uri_if_local`), and each run
stores `<experiment location>/<run id>/artifacts` in `runs.artifact_uri`. So after
`mv experiments elsewhere` the records still name the old place. The local store's artifacts
live in `<experiments_dir>/mlartifacts` by this tool's layout, so when the store is opened
from a tree whose `mlartifacts` is not the one recorded, every location under the recorded
root is rewritten to the same place under the current one (one SQLite transaction; running it
again changes nothing). Only for the local default store, `<experiments_dir>/mlflow.db`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

ARTIFACTS_DIR = "mlartifacts"
# where MLflow keeps an artifact location (the tables this tool writes to, and MLflow 3's
# logged models); a column missing from an older schema is skipped
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def artifacts_root(experiments_dir: Path) -> str:
    """The local store's artifact root, as MLflow records it (a file: URI)."""
    return (experiments_dir / ARTIFACTS_DIR).resolve().as_uri()


def follow_moved_tree(database: Path, root: str) -> list[str]:
    """Rewrite the artifact locations of `database` recorded under another `.../mlartifacts`
    root to `root`; returns the old roots (empty when nothing had moved)."""
    if not database.is_file():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db, db:
        present = [(t, c) for t, c in LOCATION_COLUMNS if c in _columns(db, t)]
        if ("experiments", "artifact_location") not in present:
            return []  # a store MLflow has not set up yet
        moved = [
            old
            for (old,) in db.execute("SELECT DISTINCT artifact_location FROM experiments")
            if isinstance(old, str)
            and old.startswith("file:")
            and old.rstrip("/").endswith(f"/{ARTIFACTS_DIR}")
            and old.rstrip("/") != root
        ]
        for old in moved:
            old = old.rstrip("/")
            for table, column in present:
                # a location that climbs out of the old root (`.../mlartifacts/../x`) is
                # not one this tool wrote: left as it is (and never uploaded to)
                db.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE ({column} = ? OR substr({column}, 1, ?) = ?) "
                    f"AND instr(substr({column}, ?), '/..') = 0",
                    (root, len(old) + 1, old, len(old) + 1, f"{old}/", len(old) + 1),
                )
    return [old.rstrip("/") for old in moved]


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
