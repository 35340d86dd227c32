"""Malformed ReDSM5 input: every case is a DataLoadError (exit 3) naming the problem."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dataaug_multi_both.data.sources import load_tables
from dataaug_multi_both.errors import DataLoadError

POSTS = pd.DataFrame({"post_id": ["p1", "p2"], "text": ["I feel sad.", "All good."]})
ANNOTATIONS = pd.DataFrame(
    {
        "post_id": ["p1"],
        "sentence_id": ["s_1_0_0"],
        "sentence_text": ["I feel sad."],
        "DSM5_symptom": ["DEPRESSED_MOOD"],
        "status": [1],
        "explanation": ["sad"],
    }
)


def write(
    directory: Path, posts: pd.DataFrame, annotations: pd.DataFrame, suffix: str = ".csv"
) -> Path:
    for stem, frame in (("redsm5_posts", posts), ("redsm5_annotations", annotations)):
        path = directory / f"{stem}{suffix}"
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        elif suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_parquet(path)
    return directory


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_local_directory_formats(tmp_path: Path, suffix: str) -> None:
    tables = load_tables(str(write(tmp_path, POSTS, ANNOTATIONS, suffix)), "main", 10, 0)
    assert list(tables.posts["post_id"]) == ["p1", "p2"]
    assert int(tables.annotations["status"].iloc[0]) == 1


def expect_error(
    tmp_path: Path, posts: pd.DataFrame, annotations: pd.DataFrame, *fragments: str
) -> None:
    with pytest.raises(DataLoadError) as err:
        load_tables(str(write(tmp_path, posts, annotations)), "main", 10, 0)
    for fragment in fragments:
        assert fragment in err.value.message
    assert err.value.exit_code == 3


def test_missing_column(tmp_path: Path) -> None:
    expect_error(tmp_path, POSTS.drop(columns=["text"]), ANNOTATIONS, "missing column", "text")


def test_unknown_symptom_is_named(tmp_path: Path) -> None:
    bad = ANNOTATIONS.assign(DSM5_symptom=["SADNESS"])
    expect_error(tmp_path, POSTS, bad, "unknown DSM5_symptom", "SADNESS")


def test_duplicate_post_ids(tmp_path: Path) -> None:
    expect_error(
        tmp_path, pd.concat([POSTS, POSTS.iloc[:1]]), ANNOTATIONS, "duplicate post ids", "p1"
    )


def test_annotation_for_missing_post(tmp_path: Path) -> None:
    expect_error(
        tmp_path, POSTS, ANNOTATIONS.assign(post_id=["p9"]), "posts that do not exist", "p9"
    )


def test_bad_status(tmp_path: Path) -> None:
    expect_error(tmp_path, POSTS, ANNOTATIONS.assign(status=[7]), "status must be 0 or 1", "7")


def test_empty_file(tmp_path: Path) -> None:
    write(tmp_path, POSTS, ANNOTATIONS)
    (tmp_path / "redsm5_annotations.csv").write_text("")
    with pytest.raises(DataLoadError, match="is empty"):
        load_tables(str(tmp_path), "main", 10, 0)


def test_header_only_file(tmp_path: Path) -> None:
    expect_error(tmp_path, POSTS, ANNOTATIONS.iloc[:0], "has no rows")


def test_non_utf8_bytes(tmp_path: Path) -> None:
    write(tmp_path, POSTS, ANNOTATIONS)
    path = tmp_path / "redsm5_posts.csv"
    path.write_bytes(path.read_bytes().replace(b"sad", b"s\xe9d"))
    with pytest.raises(DataLoadError, match="not valid UTF-8: byte 0xe9"):
        load_tables(str(tmp_path), "main", 10, 0)


def test_missing_table_file(tmp_path: Path) -> None:
    write(tmp_path, POSTS, ANNOTATIONS)
    (tmp_path / "redsm5_posts.csv").unlink()
    with pytest.raises(DataLoadError, match="has no redsm5_posts.csv"):
        load_tables(str(tmp_path), "main", 10, 0)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataLoadError, match="no such directory: "):
        load_tables(str(tmp_path / "nope"), "main", 10, 0)


def test_unreachable_hub_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # this machine has no network either way
    with pytest.raises(DataLoadError) as err:
        load_tables("irlab-udc/redsm5", "main", 10, 0)
    assert "cannot reach the Hugging Face Hub" in err.value.message
    assert "--dataset synthetic" in err.value.message
