"""The names of every metric, their aliases and what each is computed on: a leaf module
(no numpy, no torch), so the config schema can validate `optimization_metric` without
importing training code. Definitions: training/metrics.py and docs/metrics.md."""

from __future__ import annotations

import re

from dataaug_multi_both.errors import ConfigError

# one predicted span against the golds of a positive pair (training/span_metrics.py)
SPAN_METRICS = ("exact_match", "char_precision", "char_recall", "char_f1", "token_f1")
CRITERIA_METRICS = (
    "loss",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "micro_f1",
    "samples_f1",
    "auc",
)
EVIDENCE_METRICS = ("exact_match", "has_answer", "char_f1", "char_precision", "char_recall")
EVIDENCE_EXTRA_METRICS = ("token_f1", "no_answer_accuracy")
PER_CRITERION_METRICS = ("precision", "recall", "f1", "auc")
TRAIN_METRIC_NAMES = (
    "train/criteria_matcher/loss",
    "train/criteria_matcher/accuracy",
    "train/evidence_binder/loss",
)
VAL_METRIC_NAMES = tuple(f"val/criteria_matcher/{m}" for m in CRITERIA_METRICS) + tuple(
    f"val/evidence_binder/{m}" for m in EVIDENCE_METRICS + EVIDENCE_EXTRA_METRICS
)
SYSTEM_METRIC_NAMES = (
    "system/epoch_duration_sec",
    "system/disk_free_gb",
    "system/checkpoint_size_mb",
)
# logged only when `augmentation.*` is on: (criterion, post) training pairs changed this epoch
AUGMENTATION_METRIC_NAMES = ("train/augmentation/augmented_examples",)
# the headline metrics of a report (confidence intervals, baselines), in display order
HEADLINE_METRICS = (
    "criteria_matcher/f1",
    "criteria_matcher/micro_f1",
    "criteria_matcher/samples_f1",
    "criteria_matcher/precision",
    "criteria_matcher/recall",
    "criteria_matcher/accuracy",
    "criteria_matcher/auc",
    "evidence_binder/exact_match",
    "evidence_binder/char_f1",
    "evidence_binder/char_precision",
    "evidence_binder/char_recall",
    "evidence_binder/token_f1",
    "evidence_binder/has_answer",
    "evidence_binder/no_answer_accuracy",
)
# which rows or pairs each headline metric is computed on (shown next to every number)
METRIC_SUBSETS = {
    **{f"criteria_matcher/{m}": "posts" for m in CRITERIA_METRICS},
    "criteria_matcher/accuracy": "pairs",
    "criteria_matcher/micro_f1": "pairs",
    **{f"evidence_binder/{m}": "positive_pairs" for m in SPAN_METRICS},
    "evidence_binder/has_answer": "pairs",
    "evidence_binder/no_answer_accuracy": "negative_pairs",
}

METRIC_ALIASES = {
    "val_loss": "val/criteria_matcher/loss",
    "val_f1": "val/criteria_matcher/f1",
    "val_micro_f1": "val/criteria_matcher/micro_f1",
    "val_samples_f1": "val/criteria_matcher/samples_f1",
    "val_accuracy": "val/criteria_matcher/accuracy",
    "val_precision": "val/criteria_matcher/precision",
    "val_recall": "val/criteria_matcher/recall",
    "val_auc": "val/criteria_matcher/auc",
    "val_exact_match": "val/evidence_binder/exact_match",
    "val_char_f1": "val/evidence_binder/char_f1",
    "val_token_f1": "val/evidence_binder/token_f1",
    "val_has_answer": "val/evidence_binder/has_answer",
    "val_no_answer_accuracy": "val/evidence_binder/no_answer_accuracy",
}
# Metrics a run can be optimised for: every validation metric. Studies maximise (the
# contract's --direction), so a metric where lower is better is optimised as its negative.
OPTIMIZABLE_METRICS = VAL_METRIC_NAMES
MINIMISED_METRICS = tuple(n for n in VAL_METRIC_NAMES if n.endswith("/loss"))


def metric_sign(name: str) -> float:
    """+1 where higher is better, -1 for a loss (an unknown name counts as higher-better)."""
    return -1.0 if name in MINIMISED_METRICS else 1.0


def objective_of(name: str, value: float | None) -> float | None:
    """What is maximised for metric `name`: the value, or its negative for a loss."""
    return None if value is None else metric_sign(name) * value


def metric_sense_label(name: str) -> str:
    """`val/criteria_matcher/f1`, or `val/criteria_matcher/loss (lower is better)`."""
    return name if metric_sign(name) > 0 else f"{name} (lower is better)"


def objective_label(name: str) -> str:
    """How the objective is named in messages: `val/criteria_matcher/f1`, or
    `-val/criteria_matcher/loss` for a loss."""
    return name if metric_sign(name) > 0 else f"-{name}"


def resolve_metric_name(name: str) -> str:
    """Full metric name for a full name or a short alias; `ConfigError` lists the valid ones."""
    if name in OPTIMIZABLE_METRICS:
        return name
    if name in METRIC_ALIASES:
        return METRIC_ALIASES[name]
    raise ConfigError(
        f"unknown optimization metric {name!r}; valid: {', '.join(METRIC_ALIASES)} "
        f"or the full names {', '.join(OPTIMIZABLE_METRICS)}"
    )


def short_metric_title(name: str) -> str:
    """`val/criteria_matcher/f1` -> `Val F1` (column titles)."""
    alias = next((a for a, full in METRIC_ALIASES.items() if full == name), name)
    words = alias.replace("/", " ").replace("_", " ").split()
    return " ".join(w.upper() if w in ("f1", "auc") else w.capitalize() for w in words)


_CRITERION_SUFFIX = re.compile(r"_[A-Z][A-Z_]*$")  # symptom names are upper case, metrics not


def is_per_criterion(metric_name: str) -> bool:
    """`.../f1_SLEEP_ISSUES`, `.../threshold_FATIGUE`: a metric with one value per criterion
    (kept in logs and MLflow, left out of summary tables)."""
    return bool(_CRITERION_SUFFIX.search(metric_name))
