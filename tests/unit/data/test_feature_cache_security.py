"""The feature cache treats its entries as untrusted: a planted, corrupt or foreign entry
is rebuilt (with a warning naming it), never used, and never followed to write elsewhere."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataaug_multi_both.data.features import load_or_tokenise, tokenise_posts

TEXTS = (
    "I have not slept properly in weeks.",
    "",
    " ".join(["Nothing tastes like anything anymore, and I stopped cooking."] * 12),
)
BUDGET, STRIDE = 40, 8
KEY = {"dataset": "security-test"}
NAMES = ("token_ids", "offsets", "starts", "windows")
Arrays = dict[str, np.ndarray]


def cached(cache_dir: Path, tokenizer: Any) -> tuple[Any, bool]:
    return load_or_tokenise(cache_dir, KEY, tokenizer, TEXTS, BUDGET, STRIDE)


def entry_of(cache_dir: Path) -> Path:
    (entry,) = cache_dir.glob("features-*.npz")
    return entry


def read_arrays(path: Path) -> Arrays:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def npz_bytes(arrays: Arrays, compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def assert_fresh(features: Any, tokenizer: Any) -> None:
    fresh = tokenise_posts(tokenizer, TEXTS, BUDGET, STRIDE)
    for name in NAMES:
        got, want = getattr(features, name), getattr(fresh, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name


def assert_rebuilt(cache_dir: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The planted entry is not used: fresh features, a warning naming the file, and the
    entry on disk is now a valid one (the next call hits without a warning)."""
    entry = entry_of(cache_dir)
    features, hit = cached(cache_dir, tokenizer)
    assert not hit
    assert_fresh(features, tokenizer)
    warning = capsys.readouterr().err
    assert warning.startswith("warning: ") and str(entry) in warning
    assert len(warning.strip().splitlines()) == 1
    assert not entry.is_symlink() and entry.is_file()
    again, hit = cached(cache_dir, tokenizer)
    assert hit and capsys.readouterr().err == ""
    assert_fresh(again, tokenizer)


@pytest.fixture
def cache_dir(tmp_path: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]) -> Path:
    """A cache holding one valid entry for TEXTS (written by the code under test)."""
    directory = tmp_path / "cache"
    _, hit = cached(directory, tokenizer)
    assert not hit and capsys.readouterr().err == ""
    return directory


def test_a_valid_entry_is_a_hit(
    cache_dir: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    features, hit = cached(cache_dir, tokenizer)
    assert hit
    assert_fresh(features, tokenizer)
    assert capsys.readouterr().err == ""


def _set(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays], Arrays]:
    return lambda arrays: {**arrays, name: change(arrays[name].copy())}


def _poke(array: np.ndarray, index: tuple[int, ...], value: int) -> np.ndarray:
    array[index] = value
    return array


MUTATIONS: dict[str, Callable[[Arrays], Arrays]] = {
    "token id 10^9": _set("token_ids", lambda a: _poke(a, (0,), 10**9)),
    "negative token id": _set("token_ids", lambda a: _poke(a, (-1,), -1)),
    "token_ids int64": _set("token_ids", lambda a: a.astype(np.int64)),
    "token_ids float32": _set("token_ids", lambda a: a.astype(np.float32)),
    "token_ids as objects (pickled)": _set("token_ids", lambda a: a.astype(object)),
    "offsets with three columns": _set("offsets", lambda a: np.zeros((len(a), 3), np.int32)),
    "offsets beyond the post": _set("offsets", lambda a: _poke(a, (-1, 1), 10**6)),
    "negative offset": _set("offsets", lambda a: _poke(a, (0, 0), -5)),
    "starts one short": _set("starts", lambda a: a[:-1]),
    "starts past the tokens": _set("starts", lambda a: _poke(a, (-1,), 10**9)),
    "window past its post": _set("windows", lambda a: _poke(a, (0, 2), 10**6)),
    "windows flattened": _set("windows", lambda a: a.reshape(-1)),
    "token_ids missing": lambda arrays: {k: v for k, v in arrays.items() if k != "token_ids"},
}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=list(MUTATIONS))
def test_a_tampered_entry_is_rebuilt(
    mutation: str, cache_dir: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_of(cache_dir)
    entry.write_bytes(npz_bytes(MUTATIONS[mutation](read_arrays(entry))))
    assert_rebuilt(cache_dir, tokenizer, capsys)


def _truncated(data: bytes, arrays: Arrays) -> bytes:
    return data[: len(data) // 2]


CORRUPTIONS: dict[str, Callable[[bytes, Arrays], bytes]] = {
    "truncated zip": _truncated,
    "empty file": lambda data, arrays: b"",
    "zip magic then garbage": lambda data, arrays: b"PK\x03\x04" + os.urandom(512),
    "random bytes": lambda data, arrays: os.urandom(len(data)),
    "a bare .npy, not an archive": lambda data, arrays: npz_npy(arrays["token_ids"]),
    "compressed members": lambda data, arrays: npz_bytes(arrays, compressed=True),
}


def npz_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_a_corrupt_entry_is_rebuilt(
    corruption: str, cache_dir: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_of(cache_dir)
    entry.write_bytes(CORRUPTIONS[corruption](entry.read_bytes(), read_arrays(entry)))
    assert_rebuilt(cache_dir, tokenizer, capsys)


@pytest.mark.parametrize("dangling", [False, True], ids=["to a valid entry", "dangling"])
def test_a_symlinked_entry_is_replaced_never_followed(
    dangling: bool,
    cache_dir: Path,
    tmp_path: Path,
    tokenizer: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entry = entry_of(cache_dir)
    elsewhere = tmp_path / "elsewhere.npz"
    if not dangling:
        elsewhere.write_bytes(entry.read_bytes())
    before = elsewhere.read_bytes() if not dangling else None
    entry.unlink()
    entry.symlink_to(elsewhere)
    assert_rebuilt(cache_dir, tokenizer, capsys)
    assert (elsewhere.read_bytes() if elsewhere.exists() else None) == before


def test_a_directory_in_place_of_the_entry_leaves_the_features_uncached(
    cache_dir: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_of(cache_dir)
    entry.unlink()
    entry.mkdir()
    (entry / "keep").write_text("not ours")
    features, hit = cached(cache_dir, tokenizer)
    assert not hit
    assert_fresh(features, tokenizer)
    assert str(entry) in capsys.readouterr().err
    assert (entry / "keep").read_text() == "not ours"
