"""Tokenised posts, sliding windows, and the on-disk feature cache.

Each model input is `[CLS] <criterion description> [SEP] <post window> [SEP]` (or the
tokenizer's own pair template). Posts and criterion descriptions are tokenised once each
(a pair tokeniser treats its two segments independently, so this equals tokenising every
pair), and every post is cut into the same windows for all criteria: `context_budget`
tokens each, consecutive windows sharing `doc_stride` tokens. Nothing is truncated.

The tokenised posts and windows are cached under `cache_dir`, keyed by dataset
fingerprint + tokenizer + max_length + doc_stride, so the trials of a study tokenise once.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataaug_multi_both.checkpointing.atomic import atomic_write_bytes
from dataaug_multi_both.data.criteria import CRITERION_DESCRIPTIONS
from dataaug_multi_both.errors import ConfigError

CACHE_VERSION = 1


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
    windows = [
        (post, s, e)
        for post, n in enumerate(lengths)
        for s, e in window_bounds(n, budget, doc_stride)
    ]
    return TokenisedPosts(
        token_ids, offsets, starts, np.array(windows, dtype=np.int32).reshape(-1, 3)
    )


def load_or_tokenise(
    cache_dir: Path | None,
    key_parts: dict[str, Any],
    tokenizer: Any,
    texts: tuple[str, ...],
    budget: int,
    doc_stride: int,
) -> tuple[TokenisedPosts, bool]:
    """Cached `tokenise_posts`; returns (features, whether the cache was hit)."""
    if cache_dir is None:
        return tokenise_posts(tokenizer, texts, budget, doc_stride), False
    key = hashlib.sha256(
        json.dumps({**key_parts, "version": CACHE_VERSION}, sort_keys=True).encode()
    ).hexdigest()[:24]
    path = cache_dir / f"features-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return (
                    TokenisedPosts(
                        *(data[k] for k in ("token_ids", "offsets", "starts", "windows"))
                    ),
                    True,
                )
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: rebuild and overwrite it atomically
    features = tokenise_posts(tokenizer, texts, budget, doc_stride)
    buffer = io.BytesIO()
    np.savez(
        buffer, **{k: getattr(features, k) for k in ("token_ids", "offsets", "starts", "windows")}
    )
    atomic_write_bytes(path, buffer.getvalue())
    return features, False
