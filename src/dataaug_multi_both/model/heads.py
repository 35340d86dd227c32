"""The dual-head model: one shared encoder, a criteria matcher and an evidence binder.

Pure `nn.Module`s, no I/O. Input: `[CLS] criterion [SEP] post window [SEP]`.
- `CriteriaMatcherHead`: one logit per input from the pooled hidden states (mean over the
  tokens, or the first token) (does the window show the criterion's symptom?).
- `EvidenceBinderHead`: start and end logits over the tokens; positions outside the post
  window are masked, except position 0 which means "no evidence" (SQuAD v2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# Masked logits use a large finite negative (not -inf) so that fp16 softmax stays finite.
MASKED_LOGIT = -1e4


class CriteriaMatcherHead(nn.Module):
    def __init__(self, hidden_size: int, dropout: float, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """hidden [B, L, H], attention_mask [B, L] -> logits [B]."""
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens: sentence-embedding encoders (MiniLM) are trained this way
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.classifier(self.dropout(pooled)).squeeze(-1)


class EvidenceBinderHead(nn.Module):
    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.span = nn.Linear(hidden_size, 2)

    def forward(
        self, hidden: torch.Tensor, span_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, L, H], span_mask [B, L] bool -> (start, end) logits [B, L] each."""
        logits = self.span(self.dropout(hidden))
        logits = logits.masked_fill(~span_mask.unsqueeze(-1), MASKED_LOGIT)
        start, end = logits.unbind(dim=-1)
        return start, end


@dataclass
class DualHeadOutput:
    criteria_logits: torch.Tensor  # [B]
    start_logits: torch.Tensor  # [B, L]
    end_logits: torch.Tensor  # [B, L]


class DualHeadModel(nn.Module):
    def __init__(self, encoder: Any, dropout: float, pooling: str = "mean") -> None:
        """`encoder`: a Hugging Face encoder (an `nn.Module` with `.config.hidden_size`)."""
        super().__init__()
        self.encoder = encoder
        hidden_size = int(encoder.config.hidden_size)
        self.criteria_matcher = CriteriaMatcherHead(hidden_size, dropout, pooling)
        self.evidence_binder = EvidenceBinderHead(hidden_size, dropout)

    @torch.no_grad()
    def set_criteria_prior(self, positive_rate: float) -> None:
        """Start the matcher's bias at the log-odds of the positive rate, so the first steps
        learn features instead of the class prior (as in RetinaNet's prior initialisation)."""
        rate = min(max(positive_rate, 1e-4), 1 - 1e-4)
        self.criteria_matcher.classifier.bias.fill_(math.log(rate / (1 - rate)))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        span_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> DualHeadOutput:
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **kwargs
        ).last_hidden_state
        start, end = self.evidence_binder(hidden, span_mask)
        return DualHeadOutput(
            self.criteria_matcher(hidden, attention_mask).float(), start.float(), end.float()
        )
