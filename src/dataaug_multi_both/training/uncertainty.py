"""Confidence intervals of a split's metrics: a percentile bootstrap over posts (pure).

Posts are resampled with replacement (the unit the split was drawn in: a post's nine pairs
stay together), the metrics are recomputed on each resample with the same thresholds (they
were chosen on validation and are not re-tuned), and the 2.5th and 97.5th percentiles of
the resampled values bound the 95% interval. A resample in which a metric's subset is empty
(no positive pair drawn, say) gives no value; the interval uses the others and says how many
there were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dataaug_multi_both.training.metrics import SplitArrays, metric_values

RESAMPLES = 1000
LEVEL = 0.95
BOOTSTRAP_SEED = 0
_BLOCK = 250  # resamples computed at once: memory stays [block, posts]


def resample_weights(num_posts: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, posts]: how often each post is drawn in each resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_posts, np.full(num_posts, 1.0 / num_posts), size=resamples)


def bootstrap_intervals(
    arrays: SplitArrays,
    thresholds: np.ndarray,
    names: Sequence[str],
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> dict[str, Any]:
    """{method, level, resamples, seed, metrics: {name: {low, high, resamples}}}; a metric
    with no value in any resample has low = high = None."""
    num_posts = arrays.labels.shape[0]
    block: dict[str, list[np.ndarray]] = {name: [] for name in names}
    if num_posts:
        weights = resample_weights(num_posts, resamples, seed)
        for start in range(0, resamples, _BLOCK):
            values = metric_values(arrays, thresholds, weights[start : start + _BLOCK])
            for name in names:
                block[name].append(values[name])
    tail = (1 - level) / 2 * 100
    intervals = {}
    for name in names:
        drawn = np.concatenate(block[name]) if block[name] else np.empty(0)
        defined = drawn[~np.isnan(drawn)]
        low, high = np.percentile(defined, [tail, 100 - tail]) if len(defined) else (None, None)
        intervals[name] = {
            "low": None if low is None else float(low),
            "high": None if high is None else float(high),
            "resamples": int(len(defined)),
        }
    return {
        "method": "percentile bootstrap over posts",
        "level": level,
        "resamples": resamples,
        "seed": seed,
        "metrics": intervals,
    }
