"""Where ReDSM5-format tables come from: the Hugging Face Hub, a local directory, or the
synthetic generator. One entry point, `load_tables`; every failure is a `DataLoadError`."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from dataaug_multi_both.data.tables import RedSM5Tables, normalise_tables
from dataaug_multi_both.errors import DataLoadError, first_line

SYNTHETIC = "synthetic"
TABLE_STEMS = {"posts": "redsm5_posts", "annotations": "redsm5_annotations"}
TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl")
_ALTERNATIVES = (
    "use --dataset synthetic (the generated ReDSM5-format data) or --dataset DIR "
    "(a directory with redsm5_posts.csv and redsm5_annotations.csv)"
)


def load_tables(
    dataset_id: str, revision: str, synthetic_num_posts: int, seed: int
) -> RedSM5Tables:
    """Load and validate the posts and annotations named by `dataset_id`."""
    if dataset_id == SYNTHETIC:
        from dataaug_multi_both.data.synthetic import generate_tables

        posts, annotations = generate_tables(num_posts=synthetic_num_posts, seed=seed)
        return normalise_tables(
            posts, annotations, f"synthetic(seed={seed}, posts={synthetic_num_posts})"
        )
    path = Path(dataset_id).expanduser()
    if path.is_dir():
        return _load_local(path)
    if looks_like_path(dataset_id, lambda part: Path(part).is_dir()):
        raise DataLoadError(f"no such directory: {dataset_id}; {_ALTERNATIVES}")
    return _load_hub(dataset_id, revision)


# what a Hub repository id can be: `name` or `owner/name`, letters, digits, - _ . (no -- or ..)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def looks_like_path(dataset_id: str, is_local_dir: Callable[[str], bool]) -> bool:
    """Whether a dataset id that is not an existing directory can only mean one (docs/cli.md,
    "Dataset ids"): it starts with / ./ ../ or ~, ends with /, has more than one slash or a
    backslash, is no valid Hub id, or its first part is a local directory (`data/redsm5`
    while ./data exists). Anything else (`owner/name`, `name`) is a Hub id."""
    if dataset_id.startswith(("/", "./", "../", "~", ".")) or dataset_id.endswith("/"):
        return True
    if "\\" in dataset_id or dataset_id.count("/") > 1:
        return True
    if not _HUB_ID.match(dataset_id) or "--" in dataset_id or ".." in dataset_id:
        return True
    return "/" in dataset_id and is_local_dir(dataset_id.split("/")[0])


def _load_local(directory: Path) -> RedSM5Tables:
    frames = {name: _read_table(_find_table(directory, stem)) for name, stem in TABLE_STEMS.items()}
    return normalise_tables(frames["posts"], frames["annotations"], str(directory))


def _find_table(directory: Path, stem: str) -> Path:
    for suffix in TABLE_SUFFIXES:
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    wanted = " or ".join(f"{stem}{s}" for s in TABLE_SUFFIXES)
    raise DataLoadError(f"{directory} has no {wanted}")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        raw = path.read_bytes()
        if not raw.strip():
            raise DataLoadError(f"{path} is empty")
        _require_utf8(raw, path)
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        if not isinstance(frame.index, pd.RangeIndex):  # pandas made the extra field an index
            raise DataLoadError(f"{path}: a row has more fields than the header")
        return frame
    except DataLoadError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataLoadError(f"cannot read {path}: {first_line(exc)}") from exc


def _require_utf8(raw: bytes, path: Path) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataLoadError(
            f"{path} is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} (line {line})"
        ) from exc


def hub_offline() -> bool:
    """Offline mode as huggingface_hub reads it: HF_HUB_OFFLINE, else TRANSFORMERS_OFFLINE,
    set to 1, ON, YES or TRUE (any case)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub endpoint accepts a TCP connection (and offline mode is off)."""
    if hub_offline():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(dataset_id: str, revision: str) -> RedSM5Tables:
    """The two CSV files of a Hub dataset repository, read by the same function as a local
    directory (every value a string: a post whose text is "NA" stays "NA"). Online, the Hub
    says whether the cached copy is current (a branch such as `main` moves); offline
    (HF_HUB_OFFLINE=1 on a compute node, or no network) the copy in the local Hugging Face
    cache is used as it is."""
    files = {name: f"{stem}.csv" for name, stem in TABLE_STEMS.items()}
    if hub_reachable():
        paths = {name: download_hub_file(dataset_id, revision, f) for name, f in files.items()}
    else:
        cached = {name: cached_hub_file(dataset_id, revision, f) for name, f in files.items()}
        missing = [files[name] for name, path in cached.items() if path is None]
        if missing:
            raise DataLoadError(
                f"cannot reach the Hugging Face Hub to load dataset '{dataset_id}' "
                f"(revision {revision}): no network or HF_HUB_OFFLINE is set, and the local "
                f"Hugging Face cache has no {' or '.join(missing)} of it (nor is there a local "
                f"directory {dataset_id}); {_ALTERNATIVES}"
            )
        paths = {name: path for name, path in cached.items() if path is not None}
    frames = {name: _read_table(path) for name, path in paths.items()}
    return normalise_tables(frames["posts"], frames["annotations"], f"{dataset_id}@{revision}")


def cached_hub_file(dataset_id: str, revision: str, filename: str) -> Path | None:
    """One file of a Hub dataset repository from the local Hugging Face cache ($HF_HOME/hub,
    or HF_HUB_CACHE), or None when it is not there; never touches the network."""
    from huggingface_hub import hf_hub_download

    try:
        found = hf_hub_download(
            dataset_id, filename, repo_type="dataset", revision=revision, local_files_only=True
        )
    except Exception:  # not cached (LocalEntryNotFoundError), or an id the cache cannot hold
        return None
    return Path(found)


def download_hub_file(dataset_id: str, revision: str, filename: str) -> Path:
    """One file of a Hub dataset repository, through the Hugging Face cache.

    Not `datasets.load_dataset`: its CSV builder infers types (a text "NA" becomes a
    missing value, an id "007" the number 7) and cannot be told to read strings without
    naming every column in advance."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(dataset_id, filename, repo_type="dataset", revision=revision))
    except Exception as exc:  # the hub raises many unrelated types; all mean "not loadable"
        from dataaug_multi_both.tracking.retry import redact

        raise DataLoadError(  # HF_ENDPOINT may carry user:password@
            f"cannot load {filename} of dataset '{dataset_id}' (revision {revision}) "
            f"from the Hub: {type(exc).__name__}: {redact(first_line(exc))}; {_ALTERNATIVES}"
        ) from exc
