"""Evaluating a saved checkpoint on a split of a pinned split manifest (never re-split)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.data.pipeline import prepare_data
from dataaug_multi_both.data.splits import SPLIT_KEYS, SplitManifest
from dataaug_multi_both.errors import DataLoadError, TrainingError
from dataaug_multi_both.model.encoder import encoder_from_config, load_tokenizer, resolve_model_id
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.training.distributed import SINGLE, Distributed
from dataaug_multi_both.training.inference import predict, split_metrics
from dataaug_multi_both.training.recipe import quiet_hugging_face


class EvaluationDataError(DataLoadError):
    """The split cannot be loaded for evaluation (evaluate_study exit 4)."""


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    details: dict[str, Any]
    sizes: dict[str, int]
    split_key: str


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
    args = payload[ckpt.MODEL_ARGS]
    config = payload[ckpt.CONFIG]["model"]
    model = DualHeadModel(
        encoder_from_config(json.loads(args["encoder_config"])),
        config["dropout"],
        config["pooling"],
    )
    try:
        model.load_state_dict(payload[ckpt.MODEL])
    except RuntimeError as exc:
        raise TrainingError(
            f"checkpoint weights do not fit the model: {str(exc).splitlines()[0]}"
        ) from exc
    return model.to(device).float()


def evaluate_checkpoint(
    config: TrainConfig,
    payload: dict[str, Any],
    split: SplitManifest,
    split_name: str,
    cache_dir: Path,
    device: torch.device,
    dist: Distributed = SINGLE,
) -> EvaluationResult:
    quiet_hugging_face()
    key = split_key_for(split_name, config)
    tokenizer = load_tokenizer(resolve_model_id(config.model.model_id), config.model.revision)
    seed = config.seeds.python or 0
    try:
        data = prepare_data(
            config.dataset, config.model.num_criteria_classes, tokenizer, seed, cache_dir, split
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
        raise TrainingError(f"inference failed: {str(exc).splitlines()[0]}") from exc
    metrics, details = split_metrics(
        predictions, data.pairs, trainer.decision_threshold, prefix="test"
    )
    return EvaluationResult(metrics, details, data.split_sizes(key), key)
