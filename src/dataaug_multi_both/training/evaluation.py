"""Evaluating a saved checkpoint on a split of a pinned split manifest (never re-split)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.data.criteria import criteria_for
from dataaug_multi_both.data.pipeline import PreparedData, prepare_data
from dataaug_multi_both.data.splits import SPLIT_KEYS, SplitManifest
from dataaug_multi_both.errors import (
    CheckpointUnavailableError,
    DataLoadError,
    EvaluationDataError,
    TrainingError,
    first_line,
)
from dataaug_multi_both.model.encoder import (
    encoder_from_config,
    load_tokenizer,
    quiet_hugging_face,
    resolve_model_id,
)
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.training.distributed import SINGLE, Distributed
from dataaug_multi_both.training.inference import predict
from dataaug_multi_both.training.metrics import SplitArrays, split_details, split_metrics
from dataaug_multi_both.training.scoring import split_arrays
from dataaug_multi_both.training.thresholds import FIXED, DecisionThreshold

METRIC_PREFIX = {"train": "train", "validation": "val", "test": "test"}


@dataclass
class EvaluationResult:
    metrics: dict[str, float | None]
    details: dict[str, Any]
    sizes: dict[str, int]
    split_key: str  # train | validation | test
    post_indices: list[int]  # rows of `arrays`, in PairSet post order
    arrays: SplitArrays  # the metric inputs, for intervals, baselines and plots
    threshold: DecisionThreshold
    data: PreparedData

    @property
    def prefix(self) -> str:
        return METRIC_PREFIX[self.split_key]


def split_key_for(name: str, config: TrainConfig) -> str:
    """`test`/`validation`/`train`, or the dataset's own name for one of them."""
    if name in SPLIT_KEYS:
        return name
    own = {config.dataset.splits.train: "train", config.dataset.splits.validation: "validation"}
    own[config.dataset.splits.test] = "test"
    if name in own:
        return own[name]
    raise EvaluationDataError(f"no split named {name!r}; use one of {', '.join(SPLIT_KEYS)}")


def build_model(payload: dict[str, Any], device: torch.device) -> DualHeadModel:
    """The dual-head model rebuilt from the checkpoint's own architecture description."""
    try:
        args = payload[ckpt.MODEL_ARGS]
        config = payload[ckpt.CONFIG]["model"]
        encoder_config = json.loads(args["encoder_config"])
        dropout, pooling = config["dropout"], config["pooling"]
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise CheckpointUnavailableError(
            f"the checkpoint does not describe its model ({type(exc).__name__}: {exc!s:.80})"
        ) from None
    model = DualHeadModel(encoder_from_config(encoder_config), dropout, pooling)
    try:
        model.load_state_dict(payload[ckpt.MODEL])
    except RuntimeError as exc:
        raise TrainingError(f"checkpoint weights do not fit the model: {first_line(exc)}") from exc
    return model.to(device).float()


def stored_threshold(payload: dict[str, Any], config: TrainConfig) -> DecisionThreshold:
    """The decision threshold chosen on validation and stored with the checkpoint; a
    checkpoint from before thresholds were stored uses the config's fixed value (or 0.5)."""
    criteria = criteria_for(config.model.num_criteria_classes)
    stored = payload.get(ckpt.DECISION_THRESHOLD)
    if stored is None:
        setting = config.trainer.decision_threshold
        value = setting if isinstance(setting, float) else 0.5
        return DecisionThreshold(FIXED, value, (value,) * len(criteria), "default")
    try:
        return DecisionThreshold.from_dict(stored, criteria)
    except ValueError as exc:
        raise TrainingError(
            f"the checkpoint's stored decision threshold is invalid: {exc}"
        ) from exc


def evaluate_checkpoint(
    config: TrainConfig,
    payload: dict[str, Any],
    split: SplitManifest,
    split_name: str,
    cache_dir: Path,
    device: torch.device,
    dist: Distributed = SINGLE,
) -> EvaluationResult:
    """Metrics of a checkpoint on one split of `split`, with the threshold stored in the
    checkpoint (chosen on validation during training; never tuned here)."""
    quiet_hugging_face()
    key = split_key_for(split_name, config)
    threshold = stored_threshold(payload, config)
    tokenizer = load_tokenizer(resolve_model_id(config.model.model_id), config.model.revision)
    try:
        data = prepare_data(
            config.dataset, config.model.num_criteria_classes, tokenizer, cache_dir, split
        )
    except DataLoadError as exc:
        raise EvaluationDataError(exc.message) from exc
    model = build_model(payload, device)
    trainer = config.trainer
    try:
        predictions = predict(
            model,
            data.builder,
            data.tables[key],
            data.pairs,
            device,
            trainer.eval_batch_size,
            trainer.max_answer_tokens,
            dist=dist,
        )
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(f"inference failed: {first_line(exc)}") from exc
    arrays = split_arrays(predictions, data.pairs)
    prefix = METRIC_PREFIX[key]  # validation numbers are never called test numbers
    metrics = split_metrics(arrays, threshold.values(), prefix=prefix)
    details = split_details(arrays, threshold.values(), metrics, prefix=prefix)
    return EvaluationResult(
        metrics,
        details,
        data.split_sizes(key),
        key,
        predictions.post_indices,
        arrays,
        threshold,
        data,
    )
