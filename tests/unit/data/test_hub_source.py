"""The Hub loader and the local loader read the same CSV files the same way: every value a
string, so a post whose text is "NA" or "null" (or an id "007") survives both.

The Hub side runs the real `huggingface_hub` download against a loopback HTTP server that
answers the Hub's file-resolve requests (HEAD for the metadata, GET for the bytes)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataaug_multi_both.data.sources import load_tables

POSTS = b'post_id,text\n007,NA\n8,null\n9,"None of it, N/A."\n'
ANNOTATIONS = (
    b"post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n"
    b"007,s_1_0_0,NA,DEPRESSED_MOOD,1,NA\n"
    b"9,s_9_5_0,N/A.,FATIGUE,0,\n"
)
FILES = {"redsm5_posts.csv": POSTS, "redsm5_annotations.csv": ANNOTATIONS}


class _HubFiles(http.server.BaseHTTPRequestHandler):
    def _answer(self, with_body: bool) -> None:
        name = self.path.rsplit("/", 1)[-1]
        if "/resolve/" not in self.path or name not in FILES:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.end_headers()
            return
        data = FILES[name]
        self.send_response(200)
        self.send_header("X-Repo-Commit", "1" * 40)
        self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(True)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def load_from_hub(endpoint: str, cache: Path, dataset_id: str) -> subprocess.CompletedProcess:
    """In a fresh process: huggingface_hub reads HF_ENDPOINT when it is imported."""
    script = (
        "import json, sys\n"
        "from dataaug_multi_both.data.sources import load_tables\n"
        "from dataaug_multi_both.errors import DataLoadError\n"
        "try:\n"
        f"    t = load_tables({dataset_id!r}, 'main', 10, 0)\n"
        "except DataLoadError as exc:\n"
        "    print(exc.message, file=sys.stderr); sys.exit(3)\n"
        "print(json.dumps({'posts': t.posts.to_dict('list'),"
        " 'annotations': t.annotations.to_dict('list')}))\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    }
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(cache), HF_HUB_DISABLE_TELEMETRY="1")
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_na_text_loads_the_same_from_the_hub_and_a_directory(hub: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    for name, data in FILES.items():
        (local / name).write_bytes(data)
    tables = load_tables(str(local), "main", 10, 0)
    result = load_from_hub(hub, tmp_path / "hf", "someone/redsm5-copy")
    assert result.returncode == 0, result.stderr
    from_hub = json.loads(result.stdout)
    assert from_hub["posts"] == tables.posts.to_dict("list")
    assert from_hub["annotations"] == tables.annotations.to_dict("list")
    assert tables.posts["text"].tolist() == ["NA", "null", "None of it, N/A."]
    assert tables.posts["post_id"].tolist() == ["007", "8", "9"]
    assert tables.annotations["sentence_text"].tolist() == ["NA", "N/A."]


@contextlib.contextmanager
def missing_on_the_hub(name: str) -> Iterator[None]:
    data = FILES.pop(name)
    try:
        yield
    finally:
        FILES[name] = data


def test_a_file_missing_on_the_hub_is_a_data_error(hub: str, tmp_path: Path) -> None:
    with missing_on_the_hub("redsm5_annotations.csv"):
        result = load_from_hub(hub, tmp_path / "hf", "someone/half-a-dataset")
    assert result.returncode == 3
    assert "redsm5_annotations.csv" in result.stderr and "someone/half-a-dataset" in result.stderr
    assert "Traceback" not in result.stderr


def test_credentials_in_the_hub_endpoint_stay_out_of_the_message(hub: str, tmp_path: Path) -> None:
    with_password = hub.replace("http://", "http://alice:s3cret-pw@")
    with missing_on_the_hub("redsm5_posts.csv"):
        result = load_from_hub(with_password, tmp_path / "hf", "someone/private")
    assert result.returncode == 3
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_a_row_with_more_fields_than_the_header_is_a_data_error(tmp_path: Path) -> None:
    from dataaug_multi_both.errors import DataLoadError

    (tmp_path / "redsm5_posts.csv").write_bytes(b"post_id,text\np1,hello, world\np2,fine\n")
    (tmp_path / "redsm5_annotations.csv").write_bytes(ANNOTATIONS)
    with pytest.raises(DataLoadError, match="more fields than the header"):
        load_tables(str(tmp_path), "main", 10, 0)
