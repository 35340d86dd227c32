"""Tokenised posts, sliding windows, and the on-disk feature cache.

Each model input is `[CLS] <criterion description> [SEP] <post window> [SEP]` (or the
tokenizer's own pair template). Posts and criterion descriptions are tokenised once each
(a pair tokeniser treats its two segments independently, so this equals tokenising every
pair), and every post is cut into the same windows for all criteria: `context_budget`
tokens each, consecutive windows sharing `doc_stride` tokens. Nothing is truncated.

The tokenised posts and windows are cached under `cache_dir`, keyed by dataset
fingerprint + tokenizer + max_length + doc_stride, so the trials of a study tokenise once.
A cache entry is untrusted input: it is used only when it could be the tokenisation of
these very posts (see `cache_entry_problem`), and is rebuilt with a warning otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataaug_multi_both.checkpointing.atomic import atomic_write_bytes
from dataaug_multi_both.data.criteria import CRITERION_DESCRIPTIONS
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.untrusted import open_regular_file

CACHE_VERSION = 2  # 2: entries carry `meta` and are checked on load
FEATURE_ARRAYS = ("token_ids", "offsets", "starts", "windows")
# what each cached array must be: dtype and number of dimensions
_ARRAY_SPECS = {
    "token_ids": (np.dtype(np.int32), 1),
    "offsets": (np.dtype(np.int32), 2),
    "starts": (np.dtype(np.int64), 1),
    "windows": (np.dtype(np.int32), 2),
}
# what np.load and a zip member read raise on a corrupt, truncated or hostile file
_UNREADABLE = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    RuntimeError,
    MemoryError,
    zipfile.BadZipFile,
    zlib.error,
)


@dataclass(frozen=True)
class PairTemplate:
    """Where the tokenizer puts special tokens around a pair (prefix A middle B suffix)."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    type_a: int
    type_b: int
    uses_token_types: bool
    pad_id: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> PairTemplate:
        encoded = tokenizer("a", "b")
        ids = encoded["input_ids"]
        seq = encoded.sequence_ids()
        first_a, first_b = seq.index(0), seq.index(1)
        last_a = len(seq) - 1 - seq[::-1].index(0)
        last_b = len(seq) - 1 - seq[::-1].index(1)
        types = encoded.get("token_type_ids")
        return cls(
            prefix=tuple(ids[:first_a]),
            middle=tuple(ids[last_a + 1 : first_b]),
            suffix=tuple(ids[last_b + 1 :]),
            type_a=types[first_a] if types else 0,
            type_b=types[first_b] if types else 0,
            uses_token_types=types is not None,
            pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        )

    @property
    def num_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


@dataclass(frozen=True)
class TokenisedPosts:
    """All posts' tokens, flattened: post i owns rows `starts[i]:starts[i+1]`."""

    token_ids: np.ndarray  # int32 [T]
    offsets: np.ndarray  # int32 [T, 2] character offsets into the post, end exclusive
    starts: np.ndarray  # int64 [P + 1]
    windows: np.ndarray  # int32 [W, 3]: post index, first token, end token (exclusive)

    def post_slice(self, post: int) -> slice:
        return slice(int(self.starts[post]), int(self.starts[post + 1]))


def tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    blob = (
        backend.to_str()
        if backend is not None
        else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def criterion_token_ids(tokenizer: Any, criteria: tuple[str, ...]) -> list[list[int]]:
    return [
        tokenizer(CRITERION_DESCRIPTIONS[name], add_special_tokens=False)["input_ids"]
        for name in criteria
    ]


def context_budget(max_length: int, template: PairTemplate, criterion_ids: list[list[int]]) -> int:
    """Post tokens per window: what max_length leaves after the longest criterion."""
    budget = max_length - template.num_special - max(len(c) for c in criterion_ids)
    if budget < 16:
        raise ConfigError(
            f"invalid value for dataset.max_length: {max_length} (allowed: large enough to "
            f"leave >= 16 post tokens after the criterion description; this leaves {budget})"
        )
    return budget


def window_bounds(num_tokens: int, budget: int, doc_stride: int) -> list[tuple[int, int]]:
    """[start, end) token ranges covering `num_tokens`, consecutive ranges sharing
    `doc_stride` tokens. An empty post still gets one (empty) window."""
    if doc_stride >= budget:
        raise ConfigError(
            f"invalid value for dataset.doc_stride: {doc_stride} (allowed: < {budget}, the "
            "post tokens per window)"
        )
    bounds, start = [], 0
    while True:
        end = min(start + budget, num_tokens)
        bounds.append((start, end))
        if end >= num_tokens:
            return bounds
        start = end - doc_stride


def tokenise_posts(
    tokenizer: Any, texts: tuple[str, ...], budget: int, doc_stride: int
) -> TokenisedPosts:
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
    )
    lengths = [len(ids) for ids in encoded["input_ids"]]
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    token_ids = np.fromiter((t for ids in encoded["input_ids"] for t in ids), dtype=np.int32)
    offsets = np.array(
        [pair for offs in encoded["offset_mapping"] for pair in offs], dtype=np.int32
    ).reshape(-1, 2)
    return TokenisedPosts(token_ids, offsets, starts, window_table(lengths, budget, doc_stride))


def window_table(lengths: Sequence[int], budget: int, doc_stride: int) -> np.ndarray:
    """int32 [W, 3] rows (post index, first token, end token) of every post's windows."""
    rows = [
        (post, s, e)
        for post, n in enumerate(lengths)
        for s, e in window_bounds(int(n), budget, doc_stride)
    ]
    return np.array(rows, dtype=np.int32).reshape(-1, 3)


def load_or_tokenise(
    cache_dir: Path | None,
    key_parts: dict[str, Any],
    tokenizer: Any,
    texts: tuple[str, ...],
    budget: int,
    doc_stride: int,
) -> tuple[TokenisedPosts, bool]:
    """Cached `tokenise_posts`; returns (features, whether the cache was hit).

    An entry that cannot be read, is not a regular file (a symlink is never followed), or
    fails `cache_entry_problem` is rebuilt and replaced atomically, with a one-line warning
    on stderr. An entry that cannot be written leaves the features uncached (warning too).
    """
    if cache_dir is None:
        return tokenise_posts(tokenizer, texts, budget, doc_stride), False
    key = hashlib.sha256(
        json.dumps({**key_parts, "version": CACHE_VERSION}, sort_keys=True).encode()
    ).hexdigest()[:24]
    path = cache_dir / f"features-{key}.npz"
    meta = np.array([CACHE_VERSION, len(tokenizer), len(texts), budget, doc_stride], dtype=np.int64)
    if os.path.lexists(path):
        arrays, unreadable = _read_entry(path)
        problem = (
            unreadable
            if arrays is None
            else cache_entry_problem(arrays, meta, texts, budget, doc_stride)
        )
        if arrays is not None and problem is None:
            return TokenisedPosts(*(arrays[k] for k in FEATURE_ARRAYS)), True
        _warn(f"feature cache entry {path} is unusable ({problem}); rebuilding it")
    features = tokenise_posts(tokenizer, texts, budget, doc_stride)
    buffer = io.BytesIO()
    np.savez(buffer, meta=meta, **{k: getattr(features, k) for k in FEATURE_ARRAYS})
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        _warn(f"cannot write feature cache entry {path} ({exc}); continuing without it")
    return features, False


def cache_entry_problem(
    arrays: dict[str, np.ndarray],
    meta: np.ndarray,
    texts: tuple[str, ...],
    budget: int,
    doc_stride: int,
) -> str | None:
    """Why `arrays` cannot be the tokenisation of `texts` (None: they can).

    `meta` is int64 [CACHE_VERSION, vocabulary size, posts, budget, doc_stride] and must
    equal the entry's own. Checked: dtypes and shapes, `starts` partitions the tokens into
    the posts, token ids in [0, vocabulary size), character offsets ordered and inside
    their post, and the windows are exactly those the posts' lengths give. Token ids that
    are in range but wrong cannot be told apart from right ones without re-tokenising.
    """
    if set(arrays) != {"meta", *FEATURE_ARRAYS}:
        return f"holds {sorted(arrays)}, expected {sorted(['meta', *FEATURE_ARRAYS])}"
    entry_meta = arrays["meta"]
    if entry_meta.dtype != meta.dtype or not np.array_equal(entry_meta, meta):
        return "made for another tokenizer vocabulary, posts or window settings"
    for name, (dtype, ndim) in _ARRAY_SPECS.items():
        array = arrays[name]
        if array.dtype != dtype or array.ndim != ndim:
            return f"{name} is {array.dtype} with {array.ndim} dimensions, expected {dtype} with {ndim}"
    ids, offsets, starts, windows = (arrays[k] for k in FEATURE_ARRAYS)
    lengths = np.diff(starts)
    if len(starts) != len(texts) + 1 or starts[0] != 0 or (lengths < 0).any():
        return "starts do not split the tokens into the posts"
    if starts[-1] != len(ids) or offsets.shape != (len(ids), 2):
        return "token_ids, offsets and starts disagree on the number of tokens"
    vocab_size = int(meta[1])
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        return f"token ids outside [0, {vocab_size})"
    post_chars = np.repeat(np.array([len(t) for t in texts], dtype=np.int64), lengths)
    first, end = offsets[:, 0], offsets[:, 1]
    if ((first < 0) | (first > end) | (end > post_chars)).any():
        return "character offsets outside their post"
    if not np.array_equal(windows, window_table(lengths.tolist(), budget, doc_stride)):
        return "windows do not match the posts' token counts"
    return None


def _read_entry(path: Path) -> tuple[dict[str, np.ndarray] | None, str]:
    """The arrays of the .npz at `path`, or None and why not. Never follows a symlink or
    opens anything but a regular file; refuses pickles and compressed members (a small
    file must not unpack into a large allocation)."""
    if path.is_symlink():
        return None, "a symlink, never followed"
    try:
        with open_regular_file(path, follow_symlinks=False) as handle:
            # np.load reads anything else as a bare array or a pickle (refused)
            if handle.read(4) != b"PK\x03\x04":
                return None, "not an .npz archive"
            handle.seek(0)
            data = np.load(handle, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                return None, "not an .npz archive"
            with data:
                members = data.zip.infolist() if data.zip is not None else []
                if any(m.compress_type != zipfile.ZIP_STORED for m in members):
                    return None, "compressed members"
                return {name: data[name] for name in data.files}, ""
    except _UNREADABLE as exc:
        return None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
