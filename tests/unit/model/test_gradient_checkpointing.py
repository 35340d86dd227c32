"""Gradient checkpointing trades memory for compute: the gradients must not change."""

from __future__ import annotations

import torch

from dataaug_multi_both.model.encoder import (
    TINY_BERT,
    enable_gradient_checkpointing,
    load_encoder,
    resolve_model_id,
)
from dataaug_multi_both.model.heads import DualHeadModel


def _gradients(checkpointing: bool) -> tuple[float, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    encoder = load_encoder(resolve_model_id(TINY_BERT), None)
    if checkpointing:
        enable_gradient_checkpointing(encoder)
    assert encoder.is_activation_checkpointing == checkpointing
    model = DualHeadModel(encoder, dropout=0.1)
    model.train()
    ids = torch.randint(5, 100, (3, 24), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)  # the same dropout draws in both runs
    mask = torch.ones_like(ids)
    output = model(input_ids=ids, attention_mask=mask, span_mask=mask.bool())
    loss = output.criteria_logits.sum() + output.start_logits.logsumexp(-1).sum()
    loss.backward()
    return float(loss.detach()), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


def test_gradients_are_the_same_with_and_without_checkpointing() -> None:
    loss, plain = _gradients(False)
    loss_ckpt, recomputed = _gradients(True)
    assert loss_ckpt == loss
    assert plain.keys() == recomputed.keys() and len(plain) > 10
    for name, grad in plain.items():
        torch.testing.assert_close(recomputed[name], grad, rtol=1e-5, atol=1e-7, msg=name)
