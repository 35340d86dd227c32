"""From predictions to metric inputs: one `SplitArrays` per split and predictor (pure).

A pair is "HasAns" when it is positive and some of its gold evidence could be aligned in
the post; a positive pair none of whose evidence could be aligned has no span to score
(it still counts for `has_answer`, and the report counts it as excluded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from dataaug_multi_both.data.pairs import PairSet
from dataaug_multi_both.metric_names import SPAN_METRICS
from dataaug_multi_both.training.metrics import SplitArrays
from dataaug_multi_both.training.span_metrics import Span, span_scores

if TYPE_CHECKING:  # inference needs torch; this module does not
    from dataaug_multi_both.training.inference import PairPredictions


def split_arrays(predictions: PairPredictions, pairs: PairSet) -> SplitArrays:
    """The metric inputs of a split: labels, logits and per-pair evidence scores, one row
    per post of `predictions` (PairSet post order)."""
    return arrays_for(pairs, predictions.post_indices, predictions.logits, predictions.spans)


def arrays_for(
    pairs: PairSet,
    post_indices: Sequence[int],
    logits: np.ndarray,
    spans: Mapping[int, Span | None],
) -> SplitArrays:
    """SplitArrays of any predictor (the model, or a baseline) given its post logits
    [posts, criteria] and its evidence span per pair index (None: no evidence)."""
    width = len(pairs.criteria)
    shape = (len(post_indices), width)
    labels = np.zeros(shape, dtype=np.int64)
    has_span = np.zeros(shape, dtype=bool)
    predicted = np.zeros(shape, dtype=bool)
    scores = np.full((*shape, len(SPAN_METRICS)), np.nan)
    for row, post in enumerate(post_indices):
        text = pairs.texts[post]
        for c in range(width):
            example = pairs.examples[post * width + c]
            span = spans.get(post * width + c)
            labels[row, c] = example.label
            predicted[row, c] = span is not None
            if example.label == 1 and example.spans:
                has_span[row, c] = True
                found = span_scores(span, example.spans, text)
                scores[row, c] = [found[m] for m in SPAN_METRICS]
    return SplitArrays(
        pairs.criteria,
        labels,
        np.asarray(logits, np.float64).reshape(shape),
        predicted,
        scores,
        has_span,
    )
