"""One row per (pair, window): the model inputs' recipe and the training targets.

Targets of a window of pair (criterion c, post p):
- criteria label: 1 if the pair is positive and the window holds its evidence (a gold span
  lies wholly inside it, or a span too long for any window overlaps it), or the pair is
  positive but none of its evidence could be aligned (nothing to localise). Pair scores are
  the max over windows, so a positive pair needs one positive window, not all.
- span target: token positions of the first gold span wholly inside the window, else the
  first token ([CLS]) meaning "no evidence here" (SQuAD v2). Windows of a pair with
  unaligned evidence are left out of the span loss (`span_weight` 0) unless they hold one
  of its aligned spans: "no evidence here" might be wrong for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dataaug_multi_both.data.features import PairTemplate, TokenisedPosts
from dataaug_multi_both.data.pairs import PairSet


@dataclass(frozen=True)
class WindowTable:
    pair: np.ndarray  # int64 [N] index into PairSet.examples
    window: np.ndarray  # int64 [N] row of TokenisedPosts.windows
    criterion: np.ndarray  # int64 [N]
    label: np.ndarray  # float32 [N] window-level criteria label
    start: np.ndarray  # int64 [N] target start position in the model input (0 = no evidence)
    end: np.ndarray  # int64 [N]
    span_weight: np.ndarray  # float32 [N]
    length: np.ndarray  # int64 [N] model input length

    def __len__(self) -> int:
        return len(self.pair)


@dataclass(frozen=True)
class InputBuilder:
    """Builds padded model inputs for rows of a `WindowTable`."""

    template: PairTemplate
    criterion_ids: list[list[int]]
    posts: TokenisedPosts

    def context_offset(self, criterion: int) -> int:
        return (
            len(self.template.prefix)
            + len(self.criterion_ids[criterion])
            + len(self.template.middle)
        )

    def input_length(self, criterion: int, window: int) -> int:
        _, s, e = self.posts.windows[window]
        return self.context_offset(criterion) + int(e - s) + len(self.template.suffix)

    def batch(self, table: WindowTable, rows: Sequence[int]) -> dict[str, torch.Tensor]:
        t = self.template
        width = max(int(table.length[r]) for r in rows)
        ids = np.full((len(rows), width), t.pad_id, dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        context = np.zeros((len(rows), width), dtype=bool)
        for i, r in enumerate(rows):
            c = int(table.criterion[r])
            post, s, e = (int(v) for v in self.posts.windows[table.window[r]])
            base = int(self.posts.starts[post])
            window_ids = self.posts.token_ids[base + s : base + e]
            head = [*t.prefix, *self.criterion_ids[c], *t.middle]
            n = len(head) + len(window_ids) + len(t.suffix)
            ids[i, : len(head)] = head
            ids[i, len(head) : len(head) + len(window_ids)] = window_ids
            ids[i, len(head) + len(window_ids) : n] = t.suffix
            types[i, : len(head)] = t.type_a
            types[i, len(head) : n] = t.type_b
            attention[i, :n] = 1
            context[i, len(head) : len(head) + len(window_ids)] = True
            context[i, 0] = True  # the "no evidence" position
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(attention),
            "span_mask": torch.from_numpy(context),
        }
        if t.uses_token_types:
            batch["token_type_ids"] = torch.from_numpy(types)
        return batch

    def targets(self, table: WindowTable, rows: Sequence[int]) -> dict[str, torch.Tensor]:
        index = np.asarray(rows)
        return {
            "label": torch.from_numpy(table.label[index]),
            "start": torch.from_numpy(table.start[index]),
            "end": torch.from_numpy(table.end[index]),
            "span_weight": torch.from_numpy(table.span_weight[index]),
        }


def span_token_range(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """First and last token (inclusive) of a post overlapping characters [start, end)."""
    hits = np.nonzero((offsets[:, 1] > start) & (offsets[:, 0] < end))[0]
    return (int(hits[0]), int(hits[-1])) if len(hits) else None


def build_window_table(
    pairs: PairSet, builder: InputBuilder, post_indices: Sequence[int]
) -> WindowTable:
    """Rows for every window of every pair of the given posts, in post/criterion order."""
    posts = builder.posts
    windows_of: dict[int, list[int]] = {}
    for w, post in enumerate(posts.windows[:, 0]):
        windows_of.setdefault(int(post), []).append(w)
    width = len(pairs.criteria)
    rows: list[tuple[int, int, int, float, int, int, float, int]] = []
    for p in sorted(post_indices):
        offsets = posts.offsets[posts.post_slice(p)]
        for c in range(width):
            pair_index = p * width + c
            example = pairs.examples[pair_index]
            token_spans = [
                t
                for t in (span_token_range(offsets, s, e) for s, e in example.spans)
                if t is not None
            ]
            fits = [_fits_somewhere(t, windows_of[p], posts) for t in token_spans]
            offset = builder.context_offset(c)
            for w in windows_of[p]:
                _, ws, we = (int(v) for v in posts.windows[w])
                inside = [t for t in token_spans if ws <= t[0] and t[1] < we]
                overlaps_unfit = any(
                    not fit and t[0] < we and t[1] >= ws
                    for t, fit in zip(token_spans, fits, strict=True)
                )
                positive = example.label == 1 and (
                    bool(inside) or overlaps_unfit or not example.spans
                )
                start, end = (
                    (inside[0][0] - ws + offset, inside[0][1] - ws + offset) if inside else (0, 0)
                )
                weight = 0.0 if example.unaligned_evidence and not inside else 1.0
                rows.append(
                    (
                        pair_index,
                        w,
                        c,
                        float(positive),
                        start,
                        end,
                        weight,
                        builder.input_length(c, w),
                    )
                )
    columns: list[Sequence] = list(zip(*rows, strict=True)) if rows else [()] * 8
    return WindowTable(
        pair=np.asarray(columns[0], dtype=np.int64),
        window=np.asarray(columns[1], dtype=np.int64),
        criterion=np.asarray(columns[2], dtype=np.int64),
        label=np.asarray(columns[3], dtype=np.float32),
        start=np.asarray(columns[4], dtype=np.int64),
        end=np.asarray(columns[5], dtype=np.int64),
        span_weight=np.asarray(columns[6], dtype=np.float32),
        length=np.asarray(columns[7], dtype=np.int64),
    )


def _fits_somewhere(span: tuple[int, int], windows: list[int], posts: TokenisedPosts) -> bool:
    return any(
        int(posts.windows[w, 1]) <= span[0] and span[1] < int(posts.windows[w, 2]) for w in windows
    )
