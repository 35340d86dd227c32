"""The context that makes a test number meaningful: which subset it is computed on, what
trivial predictors score on the same posts, its bootstrap interval, where the threshold
came from, and the protocol (split, label set, exclusions) to set it beside published work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.hpo.evaluation_plots import write_evaluation_plots
from dataaug_multi_both.metric_names import HEADLINE_METRICS, METRIC_SUBSETS
from dataaug_multi_both.training.baselines import BASELINES, baseline_arrays, positive_rates
from dataaug_multi_both.training.curves import precision_recall, reliability_bins
from dataaug_multi_both.training.evaluation import EvaluationResult
from dataaug_multi_both.training.metrics import missing_metric_notes, split_metrics
from dataaug_multi_both.training.uncertainty import bootstrap_intervals

PLOTS = ("precision_recall", "reliability")
BASELINE_DESCRIPTIONS = {
    "all_absent": "no criterion present, no evidence",
    "all_present": "every criterion present, the whole post as evidence",
    "train_rate": "each criterion present at its training-split rate (seeded draws), "
    "the whole post as evidence where present",
}


def report_context(result: EvaluationResult, config: TrainConfig) -> dict[str, Any]:
    """The report's `subsets`, `baselines`, `confidence_intervals`, `threshold`,
    `protocol` and `calibration` blocks, and its one-line `notes`."""
    arrays, thresholds, prefix = result.arrays, result.threshold.values(), result.prefix
    sizes = arrays.subset_sizes()
    intervals = bootstrap_intervals(arrays, thresholds, HEADLINE_METRICS)
    intervals["metrics"] = {f"{prefix}/{k}": v for k, v in intervals["metrics"].items()}
    return {
        "subsets": {
            "sizes": sizes,
            "metric_subset": {f"{prefix}/{k}": METRIC_SUBSETS[k] for k in HEADLINE_METRICS},
        },
        "baselines": _baselines(result, prefix),
        "confidence_intervals": intervals,
        "threshold": {
            **result.threshold.as_dict(arrays.criteria),
            "chosen_on": "validation" if result.threshold.source == "validation" else "not tuned",
        },
        "protocol": _protocol(result, config),
        "calibration": {
            "subset": "pairs",
            "n": sizes["pairs"],
            **reliability_bins(arrays.labels, arrays.probabilities).as_dict(),
        },
        "notes": report_notes(result),
    }


def report_notes(result: EvaluationResult) -> list[str]:
    """One line for everything that makes a number here less than it seems."""
    arrays, split = result.arrays, result.split_key
    notes = missing_metric_notes(arrays.subset_sizes(), split)
    absent = [c for i, c in enumerate(arrays.criteria) if not arrays.labels[:, i].any()]
    if absent:
        notes.append(
            f"{len(absent)} of {len(arrays.criteria)} criteria have no positive post in the "
            f"{split} split ({', '.join(absent)}): their precision, recall and F1 count as 0 in "
            f"the macro averages (scikit-learn's zero_division=0), which caps macro-F1 at "
            f"{(len(arrays.criteria) - len(absent)) / len(arrays.criteria):.3f}; their AUC is "
            "undefined and left out"
        )
    if split == "validation" and result.threshold.source == "validation":
        notes.append(
            "the decision threshold was tuned on this validation split: its "
            "threshold-dependent metrics are optimistic; the test split is the unbiased number"
        )
    return notes


def _baselines(result: EvaluationResult, prefix: str) -> dict[str, Any]:
    data = result.data
    row_of = {pid: i for i, pid in enumerate(data.pairs.post_ids)}
    train_rows = [row_of[pid] for pid in data.split.post_ids["train"]]
    rates = positive_rates(data.pairs, train_rows)
    scored = baseline_arrays(data.pairs, result.post_indices, rates)
    blocks: dict[str, Any] = {}
    for name in BASELINES:
        metrics = split_metrics(scored[name], result.threshold.values(), prefix)
        blocks[name] = {
            "description": BASELINE_DESCRIPTIONS[name],
            "metrics": {f"{prefix}/{k}": metrics[f"{prefix}/{k}"] for k in HEADLINE_METRICS},
        }
    blocks["train_rate"]["rates"] = dict(
        zip(data.pairs.criteria, np.round(rates, 6).tolist(), strict=True)
    )
    return blocks


def _protocol(result: EvaluationResult, config: TrainConfig) -> dict[str, Any]:
    data, dataset = result.data, config.dataset
    report = data.pairs.report.as_dict()
    sizes = result.arrays.subset_sizes()
    return {
        "dataset": {
            "id": dataset.dataset_id,
            "revision": dataset.revision,
            "fingerprint": data.dataset_fingerprint,
        },
        "split": {
            "method": data.split.method,
            "seed": data.split.seed,
            "ratios": list(data.split.ratios) if data.split.ratios else None,
            "sizes": {key: data.split_sizes(key) for key in ("train", "validation", "test")},
            "evaluated": result.split_key,
        },
        "label_set": list(data.pairs.criteria),
        "unit": "criteria matcher: one multi-label row per post; evidence binder: "
        "(criterion, post) pairs",
        "windows": {
            "max_length": dataset.max_length,
            "doc_stride": dataset.doc_stride,
            "aggregation": "a post's criterion logit is the max over its windows; its "
            "evidence the best span over its windows against the smallest no-evidence score",
        },
        "excluded": {
            "special_case_rows": report["special_case_rows"],
            "special_case_only_posts": report["special_case_only_posts"],
            "conflicting_status_rows": report["conflicting_status_rows"],
            "duplicate_rows": report["duplicate_rows"],
            "unaligned_evidence_rows": report["unaligned"],
            "evaluated_positive_pairs_without_aligned_evidence": sizes["positive_pairs_unaligned"],
        },
        "label_rules": "a pair is positive iff some status-1 row of that post and symptom "
        "exists (status 1 wins a conflict); SPECIAL_CASE rows are not labels; a post with "
        "only SPECIAL_CASE rows is negative for every criterion; positive pairs without "
        "aligned evidence count for has_answer but not for the span metrics",
    }


def plot_paths(report_path: Path) -> list[Path]:
    """Where the plots of a report go: next to it, named after it."""
    return [report_path.parent / f"{report_path.stem}_{name}.png" for name in PLOTS]


def add_average_precision(result: EvaluationResult) -> None:
    """Each criterion's average precision, into the report's per-criterion rows."""
    arrays = result.arrays
    probabilities = arrays.probabilities
    for c, name in enumerate(arrays.criteria):
        curve = precision_recall(arrays.labels[:, c], probabilities[:, c])
        result.details["per_criterion"][name]["average_precision"] = curve.average_precision


def write_plots_for(result: EvaluationResult, report_path: Path) -> list[Path]:
    """The PNG plots of `plot_paths(report_path)`."""
    arrays = result.arrays
    probabilities = arrays.probabilities
    per = result.details["per_criterion"]
    curves = {
        name: precision_recall(arrays.labels[:, c], probabilities[:, c])
        for c, name in enumerate(arrays.criteria)
    }
    return write_evaluation_plots(
        dict(zip(PLOTS, plot_paths(report_path), strict=True)),
        curves,
        {
            name: (per[name]["recall"], per[name]["precision"], per[name]["threshold"])
            for name in arrays.criteria
        },
        {
            name: float(arrays.labels[:, c].mean()) if len(arrays.labels) else 0.0
            for c, name in enumerate(arrays.criteria)
        },
        reliability_bins(arrays.labels, probabilities),
        result.split_key,
    )
