"""A trained model ready for inference, from exactly one source: a checkpoint (verified
against its manifest's SHA256), a study (its best trial's best verified checkpoint, as
`evaluate_study` picks it), or an export directory (`serving/export.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.store import load_checkpoint, verifies
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.data.criteria import criteria_for
from dataaug_multi_both.errors import CheckpointUnavailableError, DataAugError, first_line
from dataaug_multi_both.model.encoder import load_tokenizer, quiet_hugging_face, resolve_model_id
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.training.thresholds import DecisionThreshold

EXPORT_CONFIG = "dataaug_config.json"  # in an export: what rebuilds the heads and the windows
HEADS_FILE = "heads.safetensors"
EXPORT_FORMAT = 1


@dataclass
class LoadedModel:
    model: DualHeadModel  # on the CPU, in eval mode
    tokenizer: Any
    criteria: tuple[str, ...]
    max_length: int
    doc_stride: int
    max_answer_tokens: int
    threshold: DecisionThreshold
    pooling: str
    base_model: str  # the encoder it was fine-tuned from (model_id)
    source: str  # what it was loaded from, for messages and model cards
    checkpoint_sha256: str | None = None
    report: dict[str, Any] | None = None  # the study's evaluation report, when there is one
    config: dict[str, Any] = field(default_factory=dict)  # the training config (public)
    mlflow_run_id: str | None = None  # the trial's run (checkpoint sources)
    trial_dir: Path | None = None  # the trial it came from (checkpoint sources)


def from_checkpoint(path: Path) -> LoadedModel:
    """Any checkpoint (weights-only or resume) whose SHA256 matches its manifest."""
    if not path.is_file():
        raise CheckpointUnavailableError(f"no such checkpoint: {path}")
    directory = path.resolve().parent
    try:
        manifest = CheckpointManifest.read(directory)
    except DataAugError as exc:
        raise CheckpointUnavailableError(exc.message) from None
    record = manifest.by_file(path.name) if manifest is not None else None
    if record is None:
        raise CheckpointUnavailableError(
            f"{path} is not recorded in a manifest.json beside it: its SHA256 cannot be checked"
        )
    if not verifies(path, record.sha256):
        raise CheckpointUnavailableError(
            f"{path}: SHA256 does not match the manifest (corrupted or replaced)"
        )
    payload = _load(path)
    loaded = _from_payload(payload, f"checkpoint {path}", record.sha256)
    loaded.trial_dir = directory.parent  # checkpoints/ lies in its trial directory
    return loaded


def from_study(study_dir: Path) -> LoadedModel:
    """The study's best trial, its best retained checkpoint that verifies."""
    from dataaug_multi_both.hpo.evaluate import (
        best_complete_trial,
        choose_checkpoint,
        load_study_for,
        trial_dir_near,
    )

    record, study = load_study_for(study_dir)
    best = best_complete_trial(study)
    trial_dir = trial_dir_near(study_dir, record, best.user_attrs.get("trial_dir"))
    chosen = choose_checkpoint(trial_dir)
    loaded = _from_payload(
        chosen.payload, f"study {study_dir}: {chosen.path}", chosen.record.sha256
    )
    loaded.trial_dir = trial_dir
    report_path = study_dir / "evaluation_report.json"
    if report_path.is_file():
        from dataaug_multi_both.untrusted import read_json

        try:
            report = read_json(report_path, ValueError)
            loaded.report = report if isinstance(report, dict) else None
        except ValueError:
            loaded.report = None
    return loaded


def _load(path: Path) -> dict[str, Any]:
    try:
        return load_checkpoint(path)
    except DataAugError as exc:
        raise CheckpointUnavailableError(exc.message) from None


def _from_payload(payload: dict[str, Any], source: str, sha256: str | None) -> LoadedModel:
    from dataaug_multi_both.training.evaluation import build_model, stored_threshold

    quiet_hugging_face()
    try:
        config = TrainConfig.from_dict(payload[ckpt.CONFIG])
    except (KeyError, TypeError, DataAugError) as exc:
        detail = exc.message if isinstance(exc, DataAugError) else first_line(exc)
        raise CheckpointUnavailableError(f"{source}: its config does not read: {detail}") from None
    tokenizer = load_tokenizer(resolve_model_id(config.model.model_id), config.model.revision)
    model = build_model(payload, torch.device("cpu")).eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        criteria=criteria_for(config.model.num_criteria_classes),
        max_length=config.dataset.max_length,
        doc_stride=config.dataset.stride,
        max_answer_tokens=config.trainer.max_answer_tokens,
        threshold=stored_threshold(payload, config),
        pooling=config.model.pooling,
        base_model=config.model.model_id,
        source=source,
        checkpoint_sha256=sha256,
        config=payload[ckpt.CONFIG],
        mlflow_run_id=(
            payload.get(ckpt.MLFLOW_RUN_ID)
            if isinstance(payload.get(ckpt.MLFLOW_RUN_ID), str)
            else None
        ),
    )


def from_export(directory: Path) -> LoadedModel:
    """An export directory: the encoder and tokenizer (`from_pretrained`, offline), the heads
    (safetensors) and `dataaug_config.json`."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from dataaug_multi_both.untrusted import read_json, require_mapping

    config_path = directory / EXPORT_CONFIG
    if not directory.is_dir():
        raise CheckpointUnavailableError(f"--model-dir {directory}: no such directory")
    if not config_path.is_file():
        raise CheckpointUnavailableError(f"{directory} is not an export (no {EXPORT_CONFIG})")
    odd = [p.name for p in directory.iterdir() if p.is_symlink() or not p.is_file()]
    if odd:  # a FIFO would block, a symlink would read outside the directory
        raise CheckpointUnavailableError(
            f"{directory}: an export holds regular files only, not {ascii(odd[:3])}"
        )
    try:
        data = require_mapping(read_json(config_path, ValueError), config_path, ValueError)
        criteria, threshold, settings = _checked_settings(data)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise CheckpointUnavailableError(f"{config_path}: {first_line(exc)}") from None
    quiet_hugging_face()
    try:
        encoder = AutoModel.from_pretrained(
            str(directory), local_files_only=True, trust_remote_code=False
        )
        tokenizer = AutoTokenizer.from_pretrained(
            str(directory), local_files_only=True, trust_remote_code=False
        )
        heads = load_file(str(directory / HEADS_FILE))
    except Exception as exc:  # missing or damaged files
        raise CheckpointUnavailableError(
            f"{directory}: the export does not load ({type(exc).__name__}: {first_line(exc)[:160]})"
        ) from None
    model = DualHeadModel(encoder, 0.0, settings[3])
    try:
        model.criteria_matcher.load_state_dict(_prefixed(heads, "criteria_matcher."))
        model.evidence_binder.load_state_dict(_prefixed(heads, "evidence_binder."))
    except RuntimeError as exc:
        raise CheckpointUnavailableError(
            f"{directory}: heads do not fit: {first_line(exc)}"
        ) from None
    return LoadedModel(
        model=model.float().eval(),
        tokenizer=tokenizer,
        criteria=criteria,
        max_length=settings[0],
        doc_stride=settings[1],
        max_answer_tokens=settings[2],
        threshold=threshold,
        pooling=settings[3],
        base_model=str(data.get("base_model", "")),
        source=f"export {directory}",
        checkpoint_sha256=data.get("checkpoint_sha256"),
    )


def _checked_settings(data: dict[str, Any]) -> tuple[tuple[str, ...], DecisionThreshold, Any]:
    """dataaug_config.json's values, each in its range (ValueError naming the key)."""
    from dataaug_multi_both.data.criteria import CRITERION_DESCRIPTIONS

    raw = data["criteria"]
    if not isinstance(raw, list) or not raw or not all(c in CRITERION_DESCRIPTIONS for c in raw):
        raise ValueError("criteria must be a list of the nine DSM-5 criterion names")
    criteria = tuple(raw)
    max_length, stride, answer = (
        data["max_length"],
        data["doc_stride"],
        data["max_answer_tokens"],
    )
    for key, value, low, high in (
        ("max_length", max_length, 32, 8192),
        ("doc_stride", stride, 0, 8191),
        ("max_answer_tokens", answer, 1, 8192),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{key} must be an integer in [{low}, {high}]")
    if stride >= max_length:
        raise ValueError("doc_stride must be below max_length")
    if data["pooling"] not in ("mean", "cls"):
        raise ValueError("pooling must be mean or cls")
    threshold = DecisionThreshold.from_dict(data["decision_threshold"], criteria)
    return criteria, threshold, (max_length, stride, answer, data["pooling"])


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def load_model(
    checkpoint: Path | None, study_dir: Path | None, model_dir: Path | None
) -> LoadedModel:
    if checkpoint is not None:
        return from_checkpoint(checkpoint)
    if study_dir is not None:
        return from_study(study_dir)
    assert model_dir is not None
    return from_export(model_dir)


def export_settings(loaded: LoadedModel) -> dict[str, Any]:
    """`dataaug_config.json` of an export of `loaded`."""
    from dataaug_multi_both.data.criteria import CRITERION_DESCRIPTIONS

    return {
        "format": EXPORT_FORMAT,
        "criteria": list(loaded.criteria),
        "criterion_descriptions": {c: CRITERION_DESCRIPTIONS[c] for c in loaded.criteria},
        "max_length": loaded.max_length,
        "doc_stride": loaded.doc_stride,
        "max_answer_tokens": loaded.max_answer_tokens,
        "pooling": loaded.pooling,
        "decision_threshold": loaded.threshold.as_dict(loaded.criteria),
        "base_model": loaded.base_model,
        "checkpoint_sha256": loaded.checkpoint_sha256,
    }


def json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False)
