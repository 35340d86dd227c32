"""New posts to predict on, read in chunks (memory stays flat in the number of posts): a
CSV, JSON-lines or Parquet file with a `text` column and an optional `post_id` column, or
JSON lines on stdin (`-`). Posts are untrusted input: read as strings, never evaluated."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from dataaug_multi_both.errors import ConfigError, DataLoadError, first_line
from dataaug_multi_both.serving.predictor import Post

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
FORMATS.update({".parquet": "parquet", ".pq": "parquet"})
STDIN = "-"
MAX_FIELD_CHARS = 64 * 2**20


def input_format(source: str) -> str:
    if source == STDIN:
        return "jsonl"
    kind = FORMATS.get(Path(source).suffix.lower())
    if kind is None:
        raise ConfigError(
            f"--input {source}: unknown format {Path(source).suffix or '(no suffix)'!r}; use a "
            ".csv, .jsonl or .parquet file, or - for JSON lines on stdin"
        )
    return kind


def count_posts(source: str) -> int | None:
    """How many posts the input holds (for the progress bar's ETA); None for stdin."""
    kind = input_format(source)
    if source == STDIN:
        return None
    path = _existing(source)
    csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        with path.open(encoding="utf-8", newline="") as handle:
            if kind == "csv":
                return max(0, sum(1 for _ in csv.reader(handle)) - 1)
            return sum(1 for line in handle if line.strip())
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise DataLoadError(f"cannot read --input {source}: {first_line(exc)}") from None


def read_posts(source: str, chunk_size: int) -> Iterator[list[Post]]:
    """Chunks of at most `chunk_size` posts, in input order. A missing or unreadable input
    is DataLoadError (exit 3); no `text` column is ConfigError (exit 2) naming the columns
    found; a bad JSON line is DataLoadError naming its line number."""
    kind = input_format(source)
    if kind == "parquet":
        rows: Iterator[dict[str, Any]] = _parquet_rows(_existing(source), source)
    elif kind == "csv":
        rows = _csv_rows(_existing(source), source)
    elif source == STDIN:
        rows = _jsonl_rows(sys.stdin, "stdin")
    else:
        rows = _jsonl_file_rows(_existing(source), source)
    chunk: list[Post] = []
    for number, row in enumerate(rows, start=1):
        chunk.append(_post(row, number))
        if len(chunk) == chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _existing(source: str) -> Path:
    path = Path(source)
    if not path.exists():
        raise DataLoadError(f"--input {source}: no such file")
    if not path.is_file():
        raise DataLoadError(f"--input {source}: not a regular file")
    return path


def _require_text(columns: list[str], source: str) -> None:
    if "text" not in columns:
        raise ConfigError(
            f"--input {source} has no 'text' column (columns found: "
            f"{', '.join(ascii(c)[1:-1] for c in columns[:20]) or 'none'})"
        )


def _csv_rows(path: Path, source: str) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(MAX_FIELD_CHARS)  # a long post is a post (the default stops at 128 kB)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            _require_text(list(reader.fieldnames or []), source)
            yield from reader
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataLoadError(f"cannot read --input {source}: {first_line(exc)}") from None


def _parquet_rows(path: Path, source: str) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
        names = list(handle.schema_arrow.names)
        _require_text(names, source)
        columns = [c for c in ("post_id", "text") if c in names]
        for batch in handle.iter_batches(batch_size=1024, columns=columns):
            yield from batch.to_pylist()
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise DataLoadError(f"cannot read --input {source}: {first_line(exc)}") from None


def _jsonl_file_rows(path: Path, source: str) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            yield from _jsonl_rows(handle, source)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataLoadError(f"cannot read --input {source}: {first_line(exc)}") from None


def _jsonl_rows(handle: TextIO, source: str) -> Iterator[dict[str, Any]]:
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DataLoadError(
                f"--input {source}, line {line_number}: not valid JSON ({first_line(exc)[:80]})"
            ) from None
        if not isinstance(row, dict):
            raise DataLoadError(f"--input {source}, line {line_number}: not a JSON object")
        if "text" not in row:
            raise ConfigError(
                f"--input {source}, line {line_number} has no 'text' (keys found: "
                f"{', '.join(ascii(k)[1:-1] for k in list(row)[:10]) or 'none'})"
            )
        yield row


def _post(row: dict[str, Any], number: int) -> Post:
    text = row.get("text")
    post_id = row.get("post_id")
    post = Post(
        post_id=str(post_id) if post_id not in (None, "") else f"post-{number:06d}",
        text="" if text is None else str(text),
    )
    for value in (post.post_id, post.text):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no text at all
            raise DataLoadError(
                f"--input post {number}: its text or post_id is not valid Unicode"
            ) from None
    return post
