"""What a run measures at every evaluation, and what it says about its data first (pure but
for the prediction pass): validation predictions -> decision threshold chosen on them ->
metrics, with the subsets they are computed on and one-line notes; the data summary and the
trivial baselines a run starts with."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dataaug_multi_both.config.schema import TrainerConfig
from dataaug_multi_both.data.pipeline import PreparedData
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.training.baselines import baseline_scores
from dataaug_multi_both.training.distributed import SINGLE, Distributed
from dataaug_multi_both.training.inference import predict
from dataaug_multi_both.training.metrics import missing_metric_notes, split_metrics
from dataaug_multi_both.training.scoring import split_arrays
from dataaug_multi_both.training.thresholds import DecisionThreshold, choose_threshold

FEW_POSTS = 30  # a validation split smaller than this makes a tuned threshold noisy
BASELINE_SHOWN = ("criteria_matcher/f1", "criteria_matcher/micro_f1", "evidence_binder/char_f1")


@dataclass
class Validation:
    """One evaluation on the validation split."""

    metrics: dict[str, float | None]  # val/* metrics and the chosen threshold(s)
    threshold: DecisionThreshold
    group_notes: dict[str, str]  # metric group -> the subset it is computed on
    notes: list[str] = field(default_factory=list)


def validate(
    model: DualHeadModel,
    data: PreparedData,
    trainer: TrainerConfig,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    dist: Distributed = SINGLE,
) -> Validation:
    """Validation metrics; the decision threshold is chosen here, on validation only."""
    predictions = predict(
        model,
        data.builder,
        data.tables["validation"],
        data.pairs,
        device,
        trainer.eval_batch_size,
        trainer.max_answer_tokens,
        autocast,
        dist,
    )
    arrays = split_arrays(predictions, data.pairs)
    sizes = arrays.subset_sizes()
    threshold = choose_threshold(trainer.decision_threshold, arrays.labels, arrays.probabilities)
    notes = missing_metric_notes(sizes, "validation")
    if isinstance(trainer.decision_threshold, str) and sizes["posts"] < FEW_POSTS:
        notes.append(
            f"the decision threshold is tuned on only {sizes['posts']} validation posts; "
            "with so few, a fixed trainer.decision_threshold may generalise better"
        )
    return Validation(
        {
            **split_metrics(arrays, threshold.values(), prefix="val"),
            **threshold.metrics(arrays.criteria, "val"),
        },
        threshold,
        {
            "val/criteria_matcher": f"{sizes['posts']} posts",
            "val/evidence_binder": (
                f"{sizes['positive_pairs']} pos / {sizes['negative_pairs']} neg pairs"
            ),
        },
        notes,
    )


@dataclass(frozen=True)
class DataSummary:
    """What a run prints and logs about its data before training."""

    alignment: dict[str, int]
    splits: dict[str, dict[str, int]]
    validation_baselines: dict[str, dict[str, float | None]]

    def lines(self) -> list[str]:
        report = self.alignment
        return [
            "alignment of status-1 evidence: "
            + ", ".join(f"{k} {report[k]}" for k in ("exact", "normalised", "fuzzy", "unaligned"))
            + f" (special-case rows {report['special_case_rows']}, posts with only special-case"
            f" rows {report['special_case_only_posts']}, conflicting-status rows "
            f"{report['conflicting_status_rows']}, duplicate rows {report['duplicate_rows']})",
            "trivial baselines on validation (macro-F1 / micro-F1 / char_f1): "
            + ", ".join(
                f"{name} " + " / ".join("n/a" if v is None else f"{v:.3f}" for v in row.values())
                for name, row in self.validation_baselines.items()
            ),
            "splits (posts/pairs/windows): "
            + ", ".join(
                f"{k} {v['posts']}/{v['pairs']}/{v['windows']}" for k, v in self.splits.items()
            ),
        ]

    def record(self) -> dict[str, Any]:
        return {
            "alignment": self.alignment,
            "splits": self.splits,
            "validation_baselines": self.validation_baselines,
        }


def summarise_data(data: PreparedData) -> DataSummary:
    return DataSummary(
        data.pairs.report.as_dict(),
        {k: data.split_sizes(k) for k in ("train", "validation", "test")},
        baseline_scores(data.pairs, data.split.post_ids, "validation", BASELINE_SHOWN, "val"),
    )
