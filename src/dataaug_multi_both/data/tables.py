"""The two ReDSM5 tables, their validation and their fingerprint.

posts:       post_id (str), text (str) [, split (str): the dataset's own split]
annotations: post_id, sentence_id, sentence_text, DSM5_symptom, status (0/1), explanation
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from dataaug_multi_both.data.criteria import KNOWN_LABELS
from dataaug_multi_both.errors import DataLoadError

POST_COLUMNS = ("post_id", "text")
ANNOTATION_COLUMNS = (
    "post_id",
    "sentence_id",
    "sentence_text",
    "DSM5_symptom",
    "status",
    "explanation",
)
SPLIT_COLUMN = "split"


@dataclass(frozen=True)
class RedSM5Tables:
    posts: pd.DataFrame
    annotations: pd.DataFrame
    source: str  # what was loaded, for messages and logs

    @property
    def has_own_splits(self) -> bool:
        return SPLIT_COLUMN in self.posts.columns

    def fingerprint(self) -> str:
        """SHA256 of both tables in a canonical form: same data, same fingerprint."""
        digest = hashlib.sha256()
        for frame in (self.posts, self.annotations):
            canonical = frame[sorted(frame.columns)].sort_values(list(sorted(frame.columns)))
            digest.update(canonical.to_csv(index=False).encode("utf-8"))
        return digest.hexdigest()


def normalise_tables(posts: pd.DataFrame, annotations: pd.DataFrame, source: str) -> RedSM5Tables:
    """Check columns and values, coerce types; raise `DataLoadError` naming what is wrong."""
    _require_columns(posts, POST_COLUMNS, f"posts table of {source}")
    _require_columns(annotations, ANNOTATION_COLUMNS, f"annotations table of {source}")
    if posts.empty:
        raise DataLoadError(f"posts table of {source} has no rows")
    if annotations.empty:
        raise DataLoadError(f"annotations table of {source} has no rows")

    keep_posts = list(POST_COLUMNS) + ([SPLIT_COLUMN] if SPLIT_COLUMN in posts.columns else [])
    posts = posts[keep_posts].copy()
    posts["post_id"] = posts["post_id"].astype(str)
    if posts["text"].isna().any():
        missing = posts.loc[posts["text"].isna(), "post_id"].head(5).tolist()
        raise DataLoadError(f"posts without text in {source}: {_few(missing)}")
    posts["text"] = posts["text"].astype(str)
    duplicated = posts.loc[posts["post_id"].duplicated(), "post_id"].unique().tolist()
    if duplicated:
        raise DataLoadError(f"duplicate post ids in {source}: {_few(duplicated)}")

    annotations = annotations[list(ANNOTATION_COLUMNS)].copy()
    for column in ("post_id", "sentence_id", "sentence_text", "DSM5_symptom"):
        annotations[column] = annotations[column].astype(str)
    annotations["explanation"] = annotations["explanation"].fillna("").astype(str)
    unknown = sorted(set(annotations["DSM5_symptom"]) - KNOWN_LABELS)
    if unknown:
        raise DataLoadError(
            f"unknown DSM5_symptom value(s) in {source}: {_few(unknown)} "
            f"(known: {', '.join(sorted(KNOWN_LABELS))})"
        )
    annotations["status"] = _status_column(annotations["status"], source)
    orphans = sorted(set(annotations["post_id"]) - set(posts["post_id"]))
    if orphans:
        raise DataLoadError(f"annotations for posts that do not exist in {source}: {_few(orphans)}")
    return RedSM5Tables(posts.reset_index(drop=True), annotations.reset_index(drop=True), source)


def _status_column(status: pd.Series, source: str) -> pd.Series:
    numeric = pd.to_numeric(status, errors="coerce")
    bad = status[~numeric.isin([0, 1])].astype(str).unique().tolist()
    if bad:
        raise DataLoadError(f"status must be 0 or 1 in {source}, found: {_few(bad)}")
    return numeric.astype(int)


def _require_columns(frame: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataLoadError(
            f"{what} is missing column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, frame.columns)) or 'none'})"
        )


def _few(items: list, limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
