"""Locate an annotated evidence sentence in its post (pure functions, no I/O).

`sentence_text` is usually an exact substring of the post, but copies of the data differ in
whitespace, quotes and case, or are edited. We try, in order: an exact match, a normalised
match (quotes, whitespace, case), then the most similar sentence of the post whose
similarity reaches a threshold. When a text occurs more than once, the occurrence whose
sentence index is closest to the annotated one wins (the index is the last part of
`sentence_id`, 0-based).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)|\n+")
_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'", "`": "'"}
)


class AlignMethod(str, Enum):
    EXACT = "exact"
    NORMALISED = "normalised"
    FUZZY = "fuzzy"
    UNALIGNED = "unaligned"


@dataclass(frozen=True)
class Alignment:
    method: AlignMethod
    start: int = -1  # character offsets into the post, end exclusive; -1 when unaligned
    end: int = -1

    @property
    def aligned(self) -> bool:
        return self.method is not AlignMethod.UNALIGNED


def sentence_index_from_id(sentence_id: str) -> int | None:
    """`s_12_34_5` -> 5; None when the last part is not a number."""
    tail = sentence_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the post's sentences (split after . ! ? and at line breaks),
    stripped of surrounding whitespace; empty pieces are dropped."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    stripped = []
    for s, e in spans:
        piece = text[s:e]
        left = len(piece) - len(piece.lstrip())
        right = len(piece.rstrip())
        if right > left:
            stripped.append((s + left, s + right))
    return stripped


def normalise_with_map(text: str) -> tuple[str, list[int]]:
    """Lower-case, straighten quotes, collapse whitespace runs to one space, strip.

    Returns the normalised text and, for each of its characters, the index of the original
    character it came from.
    """
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text.translate(_QUOTES)):
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                origin.append(i)
            continue
        for piece in ch.lower():
            out.append(piece)
            origin.append(i)
    if out and out[-1] == " ":
        out.pop()
        origin.pop()
    return "".join(out), origin


def align_sentence(
    post: str, sentence: str, sentence_index: int | None, threshold: float
) -> Alignment:
    """Find `sentence` in `post`; see the module docstring for the order of attempts."""
    spans = sentence_spans(post)
    target = sentence.strip()
    if target:
        exact = _occurrences(post, target)
        if exact:
            start = _closest(exact, spans, sentence_index)
            return Alignment(AlignMethod.EXACT, start, start + len(target))
        norm_post, origin = normalise_with_map(post)
        norm_target, _ = normalise_with_map(target)
        if norm_target:
            found = _occurrences(norm_post, norm_target)
            if found:
                i = _closest(found, spans, sentence_index, to_char=origin.__getitem__)
                end = origin[i + len(norm_target) - 1] + 1
                return Alignment(AlignMethod.NORMALISED, origin[i], end)
        fuzzy = _most_similar(post, spans, norm_target, sentence_index, threshold)
        if fuzzy is not None:
            return Alignment(AlignMethod.FUZZY, *fuzzy)
    return Alignment(AlignMethod.UNALIGNED)


def _occurrences(haystack: str, needle: str) -> list[int]:
    found, i = [], haystack.find(needle)
    while i != -1:
        found.append(i)
        i = haystack.find(needle, i + 1)
    return found


def _sentence_number(spans: list[tuple[int, int]], char_index: int) -> int:
    for number, (_, e) in enumerate(spans):
        if char_index < e:
            return number
    return len(spans) - 1


def _closest(
    starts: list[int],
    spans: list[tuple[int, int]],
    sentence_index: int | None,
    to_char: Callable[[int], int] = lambda i: i,
) -> int:
    """The occurrence whose sentence number is closest to `sentence_index` (first on ties);
    `to_char` maps an occurrence to its character offset in the post."""
    if sentence_index is None:
        return starts[0]
    return min(starts, key=lambda s: abs(_sentence_number(spans, to_char(s)) - sentence_index))


def _most_similar(
    post: str,
    spans: list[tuple[int, int]],
    norm_target: str,
    sentence_index: int | None,
    threshold: float,
) -> tuple[int, int] | None:
    best: tuple[float, int, tuple[int, int]] | None = None
    for number, (s, e) in enumerate(spans):
        candidate, _ = normalise_with_map(post[s:e])
        ratio = difflib.SequenceMatcher(None, candidate, norm_target, autojunk=False).ratio()
        distance = abs(number - sentence_index) if sentence_index is not None else number
        key = (ratio, -distance, (s, e))
        if ratio >= threshold and (best is None or key[:2] > best[:2]):
            best = key
    return best[2] if best else None
