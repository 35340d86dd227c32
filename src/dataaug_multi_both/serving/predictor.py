"""Predictions on new posts: the same windows, the same model call and the same aggregation
as training and `evaluate_study` (`training/inference.predict`): a pair's probability is the
sigmoid of its largest window logit; its evidence, the best span over its windows when that
beats "no evidence", in character offsets into the post as given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dataaug_multi_both.data.features import (
    PairTemplate,
    context_budget,
    criterion_token_ids,
    tokenise_posts,
)
from dataaug_multi_both.data.pairs import AlignmentReport, PairExample, PairSet
from dataaug_multi_both.data.windows import InputBuilder, build_window_table
from dataaug_multi_both.serving.model_source import LoadedModel
from dataaug_multi_both.training.inference import predict
from dataaug_multi_both.training.metrics import probabilities_of


@dataclass(frozen=True)
class Post:
    post_id: str
    text: str


class Predictor:
    """One loaded model on one device; `records(posts)` for each chunk of posts."""

    def __init__(
        self,
        loaded: LoadedModel,
        device: torch.device,
        batch_size: int,
        threshold: float | None = None,
    ) -> None:
        self.loaded = loaded
        self.device = device
        self.batch_size = batch_size
        self.model = loaded.model.to(device).eval()
        self.template = PairTemplate.from_tokenizer(loaded.tokenizer)
        self.criterion_ids = criterion_token_ids(loaded.tokenizer, loaded.criteria)
        self.budget = context_budget(loaded.max_length, self.template, self.criterion_ids)
        values = loaded.threshold.values()
        self.thresholds = np.full_like(values, threshold) if threshold is not None else values
        self.threshold_source = (
            "--threshold" if threshold is not None else f"stored ({loaded.threshold.policy})"
        )

    def records(self, posts: Sequence[Post]) -> list[dict[str, Any]]:
        if not posts:
            return []
        texts = tuple(p.text for p in posts)
        criteria = self.loaded.criteria
        tokens = tokenise_posts(self.loaded.tokenizer, texts, self.budget, self.loaded.doc_stride)
        builder = InputBuilder(self.template, self.criterion_ids, tokens)
        pairs = PairSet(
            post_ids=tuple(p.post_id for p in posts),
            texts=texts,
            criteria=criteria,
            examples=tuple(
                PairExample(i, c, 0, (), False)
                for i in range(len(posts))
                for c in range(len(criteria))
            ),
            report=AlignmentReport(),
        )
        table = build_window_table(pairs, builder, range(len(posts)))
        out = predict(
            self.model,
            builder,
            table,
            pairs,
            self.device,
            self.batch_size,
            self.loaded.max_answer_tokens,
        )
        row_of = {post: row for row, post in enumerate(out.post_indices)}
        rows = [row_of[i] for i in range(len(posts))]
        probabilities = probabilities_of(out.logits[rows])  # as evaluation computes them
        return [self._record(i, post, probabilities[i], out) for i, post in enumerate(posts)]

    def _record(
        self, index: int, post: Post, probabilities: np.ndarray, out: Any
    ) -> dict[str, Any]:
        """A post's record; an empty post is not scored: every criterion absent, without a
        probability, whatever the model makes of its empty window."""
        scored = bool(post.text.strip())
        width = len(self.loaded.criteria)
        criteria = []
        for c, name in enumerate(self.loaded.criteria):
            probability = float(probabilities[c])
            present = scored and probability >= float(self.thresholds[c])
            entry: dict[str, Any] = {
                "criterion": name,
                "probability": probability if scored else None,
                "present": present,
                "threshold": float(self.thresholds[c]),
                "evidence": None,
            }
            pair = index * width + c
            span = out.spans.get(pair)
            if present and span is not None:
                start, end = span
                entry["evidence"] = {
                    "text": post.text[start:end],
                    "start": start,
                    "end": end,
                    "score": float(out.span_scores.get(pair, math.nan)),
                }
            criteria.append(entry)
        record: dict[str, Any] = {"post_id": post.post_id, "criteria": criteria}
        if not scored:
            record["note"] = "empty post, not scored"
        return record
