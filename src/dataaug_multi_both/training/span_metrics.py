"""Scores of one predicted evidence span against the gold spans of a pair (pure).

SQuAD v2 conventions, applied to pairs that have gold evidence (the "HasAns" subset):
- exact_match: the predicted text equals a gold text after SQuAD normalisation
  (lower-case, punctuation and the articles a/an/the removed, whitespace collapsed);
- token_f1: SQuAD's word-overlap F1 of the normalised texts; the max over the golds;
- char_precision / char_recall / char_f1: overlap of character ranges, all three taken from
  the one gold span with the best char F1 (the earliest gold on ties), never maximised
  separately;
- no prediction ("no evidence") scores 0 on all of them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from dataaug_multi_both.metric_names import SPAN_METRICS

Span = tuple[int, int]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation + "\u2018\u2019\u201c\u201d")


def normalise_answer(text: str) -> str:
    """SQuAD's answer normalisation (plus typographic quotes)."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(predicted: str, gold: str) -> float:
    """SQuAD word-overlap F1 of two texts (1.0 when both normalise to nothing)."""
    pred_tokens = normalise_answer(predicted).split()
    gold_tokens = normalise_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def char_scores(predicted: Span, gold: Span) -> tuple[float, float, float]:
    """(precision, recall, f1) of two character ranges [start, end)."""
    (ps, pe), (gs, ge) = predicted, gold
    overlap = max(0, min(pe, ge) - max(ps, gs))
    if overlap == 0:
        return 0.0, 0.0, 0.0
    precision, recall = overlap / (pe - ps), overlap / (ge - gs)
    return precision, recall, 2 * precision * recall / (precision + recall)


def span_scores(predicted: Span | None, golds: Sequence[Span], text: str) -> dict[str, float]:
    """The SPAN_METRICS of one prediction on a pair with gold evidence (`golds` not empty)."""
    if not golds:
        raise ValueError("span_scores needs at least one gold span (a HasAns pair)")
    if predicted is None:
        return dict.fromkeys(SPAN_METRICS, 0.0)
    answer = text[predicted[0] : predicted[1]]
    best_char = max((char_scores(predicted, g) for g in golds), key=lambda s: s[2])
    return {
        "exact_match": float(
            any(normalise_answer(answer) == normalise_answer(text[s:e]) for s, e in golds)
        ),
        "char_precision": best_char[0],
        "char_recall": best_char[1],
        "char_f1": best_char[2],
        "token_f1": max(token_f1(answer, text[s:e]) for s, e in golds),
    }
