"""Inference over a split: window logits -> pair predictions -> metrics.

A pair's criterion logit is the max over its windows. Its evidence is the best-scoring
valid span (start <= end, at most `max_answer_tokens` long, inside the post window) over
all its windows, mapped back to character offsets in the post; it is predicted only if its
score (start + end logit) beats the pair's "no evidence" score, the smallest
[CLS]-start + [CLS]-end over its windows (as in Hugging Face's SQuAD v2 post-processing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from dataaug_multi_both.data.pairs import PairSet
from dataaug_multi_both.data.windows import InputBuilder, WindowTable
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.training.distributed import SINGLE, Distributed
from dataaug_multi_both.training.span_metrics import Span


@dataclass
class PairPredictions:
    post_indices: list[int]  # rows of the matrices below, in PairSet post order
    logits: np.ndarray  # [posts, criteria] max window logit
    spans: dict[int, Span | None]  # pair index -> predicted evidence
    span_scores: dict[int, float] = field(default_factory=dict)  # start + end logit of it


def best_spans(
    start: torch.Tensor, end: torch.Tensor, span_mask: torch.Tensor, max_answer_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: (span score, start position, end position, no-evidence score)."""
    context = span_mask.clone()
    context[:, 0] = False
    neg_inf = torch.finfo(start.dtype).min / 4
    s = start.masked_fill(~context, neg_inf)
    e = end.masked_fill(~context, neg_inf)
    length = start.shape[1]
    positions = torch.arange(length, device=start.device)
    offset = positions[None, :] - positions[:, None]  # [i, j] -> j - i
    band = (offset >= 0) & (offset < max_answer_tokens)
    scores = (s[:, :, None] + e[:, None, :]).masked_fill(~band, neg_inf)
    value, flat = scores.view(scores.shape[0], -1).max(dim=-1)
    return value, flat // length, flat % length, start[:, 0] + end[:, 0]


@torch.no_grad()
def predict(
    model: DualHeadModel,
    builder: InputBuilder,
    table: WindowTable,
    pairs: PairSet,
    device: torch.device,
    batch_size: int,
    max_answer_tokens: int,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    dist: Distributed = SINGLE,
) -> PairPredictions:
    """Predictions for every pair of `table`. Under torchrun the batches are dealt out
    whole (batch b to rank b mod W), the window results are gathered on every rank and
    combined in batch order: each batch is computed exactly as by one process and no row is
    duplicated, so the metrics equal those of a single process bit for bit."""
    was_training = model.training
    model.eval()
    order = np.argsort(-table.length, kind="stable")  # long first: less padding per batch
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    mine = [
        (b, _window_results(model, builder, table, rows, device, max_answer_tokens, autocast))
        for b, rows in enumerate(batches)
        if b % dist.world_size == dist.rank
    ]
    model.train(was_training)
    results = sorted((item for part in dist.gather(mine) for item in part), key=lambda x: x[0])
    return _combine([r for _, batch in results for r in batch], table, len(pairs.criteria))


WindowResult = tuple[int, float, float, float, Span | None]  # row, logit, null, span score, span


def _window_results(
    model: DualHeadModel,
    builder: InputBuilder,
    table: WindowTable,
    rows: list[int],
    device: torch.device,
    max_answer_tokens: int,
    autocast: Callable[[], contextlib.AbstractContextManager] | None,
) -> list[WindowResult]:
    batch = {k: v.to(device) for k, v in builder.batch(table, rows).items()}
    with autocast() if autocast else contextlib.nullcontext():
        out = model(**batch)
    value, i, j, null_score = best_spans(
        out.start_logits, out.end_logits, batch["span_mask"], max_answer_tokens
    )
    logits = out.criteria_logits.float().cpu().numpy()
    return [
        (
            row,
            float(logits[k]),
            float(null_score[k]),
            float(value[k]),
            _char_span(builder, table, row, int(i[k]), int(j[k])),
        )
        for k, row in enumerate(rows)
    ]


def _combine(results: list[WindowResult], table: WindowTable, num_criteria: int) -> PairPredictions:
    """Window results -> pair predictions: max logit, best span vs the smallest null score."""
    pair_logit: dict[int, float] = {}
    best: dict[int, tuple[float, Span]] = {}
    null: dict[int, float] = {}
    for row, logit, null_score, value, span in results:
        pair = int(table.pair[row])
        pair_logit[pair] = max(pair_logit.get(pair, -np.inf), logit)
        null[pair] = min(null.get(pair, np.inf), null_score)
        if span is not None and value > best.get(pair, (-np.inf, (0, 0)))[0]:
            best[pair] = (value, span)
    post_indices = sorted({p // num_criteria for p in pair_logit})
    matrix = np.array(
        [[pair_logit[p * num_criteria + c] for c in range(num_criteria)] for p in post_indices]
    )
    spans = {
        pair: (best[pair][1] if pair in best and best[pair][0] > null[pair] else None)
        for pair in pair_logit
    }
    scores = {pair: best[pair][0] for pair, span in spans.items() if span is not None}
    return PairPredictions(
        post_indices, matrix.reshape(len(post_indices), num_criteria), spans, scores
    )


def _char_span(builder: InputBuilder, table: WindowTable, row: int, i: int, j: int) -> Span | None:
    criterion = int(table.criterion[row])
    post, window_start, window_end = (int(v) for v in builder.posts.windows[table.window[row]])
    offset = builder.context_offset(criterion)
    first, last = i - offset + window_start, j - offset + window_start
    if not (window_start <= first <= last < window_end):
        return None  # an empty window has no valid span
    offsets = builder.posts.offsets[builder.posts.post_slice(post)]
    return int(offsets[first, 0]), int(offsets[last, 1])
