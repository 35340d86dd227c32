"""The best evidence span of a window, by hand."""

from __future__ import annotations

import torch

from dataaug_multi_both.training.inference import best_spans


def test_best_valid_span_and_the_no_evidence_score() -> None:
    # positions 0 ([CLS]) .. 5; the post is at 2..4 (span_mask), 1 and 5 are special tokens
    start = torch.tensor([[3.0, 9.0, 1.0, 2.0, 0.0, 9.0]])
    end = torch.tensor([[4.0, 9.0, 0.0, 1.0, 5.0, 9.0]])
    mask = torch.tensor([[True, False, True, True, True, False]])
    value, i, j, null = best_spans(start, end, mask, max_answer_tokens=10)
    # masked positions (the 9s) never win; [CLS] is not a span; best is start 3 + end 4
    assert (int(i), int(j), float(value)) == (3, 4, 7.0)
    assert float(null) == 7.0  # start[0] + end[0]


def test_end_before_start_and_too_long_spans_are_excluded() -> None:
    start = torch.tensor([[0.0, 0.0, 5.0, 0.0, 0.0]])
    end = torch.tensor([[0.0, 6.0, 0.0, 0.0, 4.0]])
    mask = torch.tensor([[True, True, True, True, True]])
    # end 1 is before start 2; the span 2..4 is 3 tokens: allowed with 3, not with 2
    value, i, j, _ = best_spans(start, end, mask, max_answer_tokens=3)
    assert (int(i), int(j), float(value)) == (2, 4, 9.0)
    _, i, j, _ = best_spans(start, end, mask, max_answer_tokens=2)
    assert (int(i), int(j)) != (2, 4) and int(j) - int(i) < 2
