"""Evidence-safe augmentation of one post (pure: text + spans + settings + RNG in, out).

The post is cut into *units*: sentences, merged where a gold span crosses a sentence
boundary. A unit that overlaps a gold span is evidence; the others are free text.
- Free units may be deleted, shuffled among the free slots, and edited word by word
  (EDA: swap, delete, insert a synonym, replace by a synonym).
- Evidence units are cut further at every span boundary into *pieces*, so that each span is
  a run of whole pieces. Pieces get only meaning-keeping edits: a synonym for a non-key word
  (`lexicon.SAFE_SYNONYMS`) and whitespace/punctuation noise. Nothing is ever deleted from
  or moved inside an evidence unit.
The new text is the units joined in their new order; each span's new offsets are those of
its first and last piece, and `check_spans` verifies that the text there is exactly the
span's (possibly edited) pieces joined. The edits are a pure function of the RNG passed in.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from dataaug_multi_both.config.schema import AugmentationConfig
from dataaug_multi_both.data.alignment import sentence_spans
from dataaug_multi_both.data.lexicon import SAFE_SYNONYMS, SYNONYMS

Span = tuple[int, int]
_WORD = re.compile(r"[A-Za-z']+")


@dataclass(frozen=True)
class AugmentedPost:
    text: str
    spans: dict[Span, Span]  # original span -> its span in `text`
    evidence: dict[Span, str]  # original span -> its (possibly edited) evidence text
    edited: bool  # anything changed


def sentence_bounds(text: str) -> list[Span]:
    """[start, end) of each sentence as evidence alignment splits them (`sentence_spans`);
    the whitespace after a sentence belongs to it, so the sentences tile the text."""
    starts = [start for start, _ in sentence_spans(text)[1:]]
    return list(zip([0, *starts], [*starts, len(text)], strict=True))


def _units(text: str, spans: list[Span]) -> list[tuple[Span, bool]]:
    """Sentences merged across span boundaries, each flagged evidence or not."""
    units: list[list[int]] = []
    for start, end in sentence_bounds(text):
        crossing = any(s < start < e for s, e in spans)  # a span runs on from the unit before
        if units and crossing:
            units[-1][1] = end
        else:
            units.append([start, end])
    return [((s, e), any(a < e and s < b for a, b in spans)) for s, e in units]


def _pieces(unit: Span, spans: list[Span]) -> list[Span]:
    cuts = {unit[0], unit[1]}
    for s, e in spans:
        cuts.update(c for c in (s, e) if unit[0] < c < unit[1])
    ordered = sorted(cuts)
    return list(zip(ordered, ordered[1:], strict=False))


def _match_case(word: str, replacement: str) -> str:
    if word[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _synonym(word: str, lexicon: dict[str, tuple[str, ...]], rng: random.Random) -> str | None:
    choices = lexicon.get(word.lower())
    return _match_case(word, rng.choice(choices)) if choices else None


def _replace_words(
    text: str, lexicon: dict[str, tuple[str, ...]], prob: float, rng: random.Random
) -> str:
    if prob <= 0:
        return text

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.lower() in lexicon and rng.random() < prob:
            return _synonym(word, lexicon, rng) or word
        return word

    return _WORD.sub(swap, text)


def _edit_evidence(
    text: str, unit: Span, spans: list[Span], prob: float, rng: random.Random
) -> list[tuple[Span, str]]:
    """The pieces of an evidence unit with safe synonyms for whole words that lie inside one
    piece (a word cut by a span boundary is left alone)."""
    pieces = _pieces(unit, spans)
    replaced: dict[int, tuple[int, str]] = {}  # word start -> (word end, replacement)
    if prob > 0:
        for match in _WORD.finditer(text, unit[0], unit[1]):
            start, end = match.span()
            word = match.group(0)
            whole = any(a <= start and end <= b for a, b in pieces)
            if whole and word.lower() in SAFE_SYNONYMS and rng.random() < prob:
                replaced[start] = (end, _synonym(word, SAFE_SYNONYMS, rng) or word)
    out = []
    for a, b in pieces:
        parts, at = [], a
        for start in sorted(k for k in replaced if a <= k < b):
            end, replacement = replaced[start]
            parts += [text[at:start], replacement]
            at = end
        parts.append(text[at:b])
        out.append(((a, b), "".join(parts)))
    return out


def _eda(text: str, config: AugmentationConfig, rng: random.Random) -> str:
    """Word-level edits of free text: synonym, insert, delete, swap (EDA). The whitespace
    after the sentence stays where it is."""
    core = text.rstrip()
    return _eda_words(core, config, rng) + text[len(core) :]


def _eda_words(text: str, config: AugmentationConfig, rng: random.Random) -> str:
    text = _replace_words(text, SYNONYMS, config.synonym_prob, rng)
    tokens = text.split(" ")
    if config.word_insert_prob > 0:
        out = []
        for token in tokens:
            out.append(token)
            match = _WORD.fullmatch(token)
            if match and rng.random() < config.word_insert_prob:
                extra = _synonym(token, SYNONYMS, rng)
                if extra:
                    out.append(extra.lower())
        tokens = out
    if config.word_delete_prob > 0 and len(tokens) > 1:
        kept = [t for t in tokens if rng.random() >= config.word_delete_prob]
        tokens = kept or tokens[:1]
    if config.word_swap_prob > 0:
        for i in range(len(tokens) - 1):
            if rng.random() < config.word_swap_prob:
                tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
    return " ".join(tokens)


def _noise(text: str, rng: random.Random) -> str:
    """Whitespace or punctuation noise that keeps the words: a doubled space, or a final
    '.' / '!' turned into the other or doubled."""
    choice = rng.randrange(3)
    spaces = [m.start() for m in re.finditer(" ", text)]
    if choice == 0 and spaces:
        at = rng.choice(spaces)
        return text[:at] + " " + text[at:]
    stripped = text.rstrip()
    tail = text[len(stripped) :]
    if stripped.endswith((".", "!")):
        mark = "!" if choice == 1 else stripped[-1] * 2
        return stripped[:-1] + mark + tail
    return text


def augment_post(
    text: str, spans: list[Span], config: AugmentationConfig, rng: random.Random
) -> AugmentedPost:
    units = _units(text, spans)
    edited_units: list[tuple[str, list[tuple[Span, str]]]] = []  # text, evidence pieces
    for (start, end), evidence in units:
        if not evidence:
            if rng.random() < config.sentence_delete_prob and len(units) > 1:
                continue
            edited_units.append((_eda(text[start:end], config, rng), []))
            continue
        noisy = rng.random() < config.evidence_noise_prob
        pieces = _edit_evidence(text, (start, end), spans, config.evidence_synonym_prob, rng)
        if noisy:
            k = rng.randrange(len(pieces))
            pieces[k] = (pieces[k][0], _noise(pieces[k][1], rng))
        edited_units.append(("".join(t for _, t in pieces), pieces))
    if rng.random() < config.sentence_shuffle_prob:
        free = [i for i, (_, pieces) in enumerate(edited_units) if not pieces]
        moved = [edited_units[i] for i in free]
        rng.shuffle(moved)
        for i, unit in zip(free, moved, strict=True):
            edited_units[i] = unit
    out: list[str] = []
    length = 0
    piece_at: dict[Span, Span] = {}  # original piece -> new [start, end)
    for unit_text, pieces in edited_units:
        if not unit_text:
            continue
        if out and not out[-1][-1:].isspace() and not unit_text[:1].isspace():
            out.append(" ")
            length += 1
        at = length
        for piece, piece_text in pieces:
            piece_at[piece] = (at, at + len(piece_text))
            at += len(piece_text)
        out.append(unit_text)
        length += len(unit_text)
    new_text = "".join(out)
    edited_piece = {piece: t for _, pieces in edited_units for piece, t in pieces}
    mapped: dict[Span, Span] = {}
    evidence_text: dict[Span, str] = {}
    for span in spans:
        inside = sorted(p for p in piece_at if span[0] <= p[0] and p[1] <= span[1])
        mapped[span] = (piece_at[inside[0]][0], piece_at[inside[-1]][1])
        evidence_text[span] = "".join(edited_piece[p] for p in inside)
    post = AugmentedPost(new_text, mapped, evidence_text, new_text != text)
    problems = check_spans(post)
    if problems:  # a bug, never data: refuse to train on a misplaced span
        raise AssertionError("; ".join(problems))
    return post


def check_spans(post: AugmentedPost) -> list[str]:
    """The invariant: the text at each recomputed span is that span's evidence text."""
    problems = []
    for span, (start, end) in post.spans.items():
        if post.text[start:end] != post.evidence[span]:
            problems.append(
                f"span {span} -> {(start, end)}: {post.text[start:end]!r} != {post.evidence[span]!r}"
            )
    return problems
