"""`train --validate-only`: load what a run loads before its first step (device, tokenizer,
data, model) and write nothing: no trial directory, no MLflow run, no feature cache.

Every failure is the error a real run would raise at the same point, so it keeps its exit
code (a model or dataset that cannot be loaded is still exit 3)."""

from __future__ import annotations

from dataclasses import dataclass

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.data.pipeline import prepare_data
from dataaug_multi_both.model.encoder import (
    TINY_BERT,
    enable_gradient_checkpointing,
    load_encoder,
    load_tokenizer,
    quiet_hugging_face,
    resolve_model_id,
)
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.training.distributed import Distributed
from dataaug_multi_both.training.runtime import make_runtime
from dataaug_multi_both.training.validation import DataSummary, summarise_data


@dataclass(frozen=True)
class PreflightReport:
    model_id: str
    loaded_from: str  # the hub id or directory actually loaded
    kind: str  # embedded | local | hub
    parameters: int  # encoder + both heads
    device: str
    data: DataSummary

    def _where(self) -> str:
        if self.model_id == TINY_BERT:  # built here, only its tokenizer comes from MiniLM
            return f"embedded: randomly initialised, MiniLM's tokenizer from {self.loaded_from}"
        return f"{self.kind}: {self.loaded_from}"

    def lines(self) -> list[str]:
        return [
            f"model {self.model_id}, {self.parameters / 1e6:.2f}M parameters, device "
            f"{self.device} ({self._where()})",
            *self.data.lines(),
            "configuration, data, tokenizer and model load: nothing was trained or written",
        ]


def preflight(config: TrainConfig, dist: Distributed) -> PreflightReport:
    """Load everything `TrainingRecipe.setup` loads, in its order, without its side effects
    (the feature cache is skipped: posts are tokenised in memory)."""
    quiet_hugging_face()
    runtime = make_runtime(config.trainer, dist, lambda _note: None)
    source = resolve_model_id(config.model.model_id)
    tokenizer = load_tokenizer(source, config.model.revision)
    data = prepare_data(config.dataset, config.model.num_criteria_classes, tokenizer, None)
    encoder = load_encoder(source, config.model.revision)
    if config.model.gradient_checkpointing:  # an encoder without support is refused here too
        enable_gradient_checkpointing(encoder)
    model = DualHeadModel(encoder, config.model.dropout, config.model.pooling)
    return PreflightReport(
        config.model.model_id,
        source.resolved,
        source.kind,
        sum(p.numel() for p in model.parameters()),
        str(runtime.device),
        summarise_data(data),
    )
