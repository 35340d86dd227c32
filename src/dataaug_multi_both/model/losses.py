"""Losses of the two heads and their weighted sum.

loss = w_cm * BCE(criteria logits, window labels; positives weighted by positive_class_weight)
     + w_eb * (CE(start logits, start) + CE(end logits, end)) / 2   over windows with span_weight 1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dataaug_multi_both.model.heads import DualHeadOutput


@dataclass
class LossParts:
    total: torch.Tensor
    criteria_matcher: torch.Tensor
    evidence_binder: torch.Tensor


def criteria_matcher_loss(
    logits: torch.Tensor, labels: torch.Tensor, positive_weight: float = 1.0
) -> torch.Tensor:
    """BCE; `positive_weight` > 1 counts each positive window that many times (imbalance)."""
    weight = torch.tensor(positive_weight, device=logits.device, dtype=logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=weight)


def evidence_binder_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
    weight: torch.Tensor,
) -> torch.Tensor:
    """Mean span cross-entropy over rows with weight > 0; 0 when there are none."""
    per_row = (
        F.cross_entropy(start_logits, start, reduction="none")
        + F.cross_entropy(end_logits, end, reduction="none")
    ) / 2
    total_weight = weight.sum()
    if total_weight <= 0:
        return per_row.sum() * 0.0  # keeps the graph; contributes nothing
    return (per_row * weight).sum() / total_weight


def dual_head_loss(
    output: DualHeadOutput,
    targets: dict[str, torch.Tensor],
    weight_criteria: float,
    weight_evidence: float,
    positive_weight: float = 1.0,
) -> LossParts:
    cm = criteria_matcher_loss(output.criteria_logits, targets["label"], positive_weight)
    eb = evidence_binder_loss(
        output.start_logits,
        output.end_logits,
        targets["start"],
        targets["end"],
        targets["span_weight"],
    )
    return LossParts(weight_criteria * cm + weight_evidence * eb, cm, eb)
