"""The two heads' losses, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from dataaug_multi_both.model.heads import DualHeadOutput
from dataaug_multi_both.model.losses import criteria_matcher_loss, dual_head_loss


def output(start: torch.Tensor, end: torch.Tensor, logits: torch.Tensor) -> DualHeadOutput:
    return DualHeadOutput(logits, start, end)


def test_positive_weight_counts_each_positive_that_many_times() -> None:
    logits, labels = torch.tensor([0.0, 0.0]), torch.tensor([1, 0])
    plain = criteria_matcher_loss(logits, labels, 1.0)
    weighted = criteria_matcher_loss(logits, labels, 3.0)
    assert float(plain) == pytest.approx(math.log(2))
    assert float(weighted) == pytest.approx((3 * math.log(2) + math.log(2)) / 2)


def test_rows_without_span_weight_add_nothing_but_keep_the_graph() -> None:
    start = torch.zeros(2, 4, requires_grad=True)
    end = torch.zeros(2, 4, requires_grad=True)
    logits = torch.zeros(2, requires_grad=True)
    targets = {
        "label": torch.tensor([1.0, 0.0]),
        "start": torch.tensor([1, 0]),
        "end": torch.tensor([2, 0]),
        "span_weight": torch.tensor([0.0, 0.0]),
    }
    parts = dual_head_loss(output(start, end, logits), targets, 1.0, 2.0)
    assert float(parts.evidence_binder.detach()) == 0.0
    assert float(parts.total.detach()) == float(parts.criteria_matcher.detach())
    parts.total.backward()  # no error: the zero term is still part of the graph
    assert start.grad is not None and float(start.grad.abs().sum()) == 0.0


def test_span_loss_is_the_mean_of_start_and_end_cross_entropy_over_weighted_rows() -> None:
    start = torch.zeros(2, 4)  # uniform: CE = log 4 for any target
    end = torch.zeros(2, 4)
    targets = {
        "label": torch.tensor([1.0, 1.0]),
        "start": torch.tensor([1, 2]),
        "end": torch.tensor([1, 3]),
        "span_weight": torch.tensor([1.0, 0.0]),
    }
    parts = dual_head_loss(output(start, end, torch.zeros(2)), targets, 0.5, 2.0)
    assert abs(float(parts.evidence_binder) - math.log(4)) < 1e-6
    assert abs(float(parts.total) - (0.5 * float(parts.criteria_matcher) + 2 * math.log(4))) < 1e-5
