"""A deterministic generator of realistic ReDSM5-format data (the embedded default dataset).

Posts mix first-person symptom sentences for all nine criteria with neutral sentences and
status-0 hard negatives; some posts have several symptoms, some none, some run far past
512 tokens with their evidence near the end. The annotation table reproduces the quirks of
the real data: duplicated (sentence, symptom) rows with different explanations, pairs with
both status-0 and status-1 rows, a sentence occurring twice in its post, posts with only
status-0 rows, SPECIAL_CASE rows, and `sentence_text` copies that differ from the post in
whitespace/quotes/case, are paraphrased, or do not occur at all.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import pandas as pd

from dataaug_multi_both.data import synthetic_lexicon as lex
from dataaug_multi_both.data.criteria import CRITERION_DESCRIPTIONS, SPECIAL_CASE, SYMPTOMS

# How often each criterion is chosen for a post (real ReDSM5 is similarly skewed).
SYMPTOM_WEIGHTS = (0.22, 0.12, 0.07, 0.10, 0.05, 0.10, 0.14, 0.07, 0.13)
SYMPTOM_COUNT_WEIGHTS = (0.22, 0.33, 0.25, 0.13, 0.07)  # 0..4 symptoms per post
LONG_POST_PROB = 0.06
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass
class _Sentence:
    text: str
    symptom: str | None = None  # evidence of this symptom (status 1)
    negative_of: str | None = None  # hard negative for this symptom (status 0)


@dataclass
class _Annotation:
    index: int  # 0-based sentence index in the post
    symptom: str
    status: int
    text: str
    explanation: str


@dataclass
class _Post:
    sentences: list[_Sentence] = field(default_factory=list)


def generate_tables(num_posts: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (posts, annotations) DataFrames in ReDSM5 format, identical for the same seed."""
    rng = random.Random(seed)
    post_rows, annotation_rows = [], []
    for number in range(num_posts):
        post_id = f"syn_{number:05d}"
        sentences = _compose_sentences(rng)
        text, sentences = _render(rng, sentences)
        for ann in _annotate(rng, sentences):
            code = SYMPTOMS.index(ann.symptom) if ann.symptom in SYMPTOMS else len(SYMPTOMS)
            annotation_rows.append(
                {
                    "post_id": post_id,
                    # the same (sentence, symptom) gets the same id, as in ReDSM5; the last
                    # part is the sentence's 0-based index in the post
                    "sentence_id": f"s_{number}_{code}_{ann.index}",
                    "sentence_text": ann.text,
                    "DSM5_symptom": ann.symptom,
                    "status": ann.status,
                    "explanation": ann.explanation,
                }
            )
        post_rows.append({"post_id": post_id, "text": text})
    return pd.DataFrame(post_rows), pd.DataFrame(annotation_rows)


def _fill(rng: random.Random, template: str) -> str:
    return _SLOT.sub(lambda m: rng.choice(lex.SLOTS[m.group(1)]), template)


def _positive(rng: random.Random, symptom: str) -> str:
    sentence = _fill(rng, rng.choice(lex.POSITIVE[symptom]))
    hedge = rng.choice(lex.HEDGES) if rng.random() < 0.2 else ""
    if hedge and not sentence.startswith("I "):
        sentence = sentence[0].lower() + sentence[1:]
    return hedge + sentence


def _compose_sentences(rng: random.Random) -> list[_Sentence]:
    count = rng.choices(range(5), weights=SYMPTOM_COUNT_WEIGHTS)[0]
    chosen: list[str] = []
    while len(chosen) < count:
        symptom = rng.choices(SYMPTOMS, weights=SYMPTOM_WEIGHTS)[0]
        if symptom not in chosen:
            chosen.append(symptom)
    evidence = [
        _Sentence(_positive(rng, s), symptom=s)
        for s in chosen
        for _ in range(1 if rng.random() < 0.75 else 2)
    ]
    others = [s for s in SYMPTOMS if s not in chosen]
    negatives = []
    if rng.random() < 0.35:
        for s in rng.sample(others, k=min(len(others), rng.randint(1, 2))):
            negatives.append(_Sentence(_fill(rng, rng.choice(lex.HARD_NEGATIVE[s])), negative_of=s))
    long_post = rng.random() < LONG_POST_PROB
    neutral_count = rng.randint(45, 70) if long_post else rng.randint(2, 7)
    neutrals = [_Sentence(_fill(rng, rng.choice(lex.NEUTRAL))) for _ in range(neutral_count)]
    if long_post:  # evidence near the end, past the first 512 tokens
        tail = evidence + negatives + neutrals[-3:]
        rng.shuffle(tail)
        body = neutrals[:-3] + tail
    else:
        body = evidence + negatives + neutrals
        rng.shuffle(body)
    if evidence and rng.random() < 0.04:  # the same sentence twice; the later one is annotated
        repeated = rng.choice(evidence)
        body.insert(rng.randint(0, body.index(repeated)), _Sentence(repeated.text))
    if rng.random() < 0.4:
        body.insert(0, _Sentence(rng.choice(lex.OPENERS)))
    if rng.random() < 0.5:
        body.append(_Sentence(rng.choice(lex.CLOSERS)))
    return body


def _render(rng: random.Random, sentences: list[_Sentence]) -> tuple[str, list[_Sentence]]:
    """Apply the post's writing style and join the sentences into the post text."""
    lowercase = rng.random() < 0.15
    drop_apostrophes = rng.random() < 0.1
    for sentence in sentences:
        if drop_apostrophes:
            sentence.text = sentence.text.replace("I'm", "im").replace("don't", "dont")
        if lowercase:
            sentence.text = sentence.text.lower()
    parts = [sentences[0].text]
    for sentence in sentences[1:]:
        parts.append("\n\n" if rng.random() < 0.15 else " ")
        parts.append(sentence.text)
    return "".join(parts), sentences


def _annotate(rng: random.Random, sentences: list[_Sentence]) -> list[_Annotation]:
    annotations: list[_Annotation] = []
    neutral_indices = [i for i, s in enumerate(sentences) if not s.symptom and not s.negative_of]
    for index, sentence in enumerate(sentences):
        if sentence.symptom:
            text = _annotation_copy(rng, sentence.text, sentence.symptom)
            annotations.append(
                _Annotation(index, sentence.symptom, 1, text, _explain(rng, sentence.symptom))
            )
            if rng.random() < 0.05:  # duplicated row with a different explanation
                annotations.append(
                    _Annotation(index, sentence.symptom, 1, text, _explain(rng, sentence.symptom))
                )
            if neutral_indices and rng.random() < 0.05:  # the same pair also has a status-0 row
                other = rng.choice(neutral_indices)
                annotations.append(
                    _Annotation(
                        other,
                        sentence.symptom,
                        0,
                        sentences[other].text,
                        "Considered and rejected.",
                    )
                )
        elif sentence.negative_of:
            annotations.append(
                _Annotation(
                    index,
                    sentence.negative_of,
                    0,
                    sentence.text,
                    "Mentions the topic, not the symptom.",
                )
            )
    if neutral_indices and rng.random() < 0.03:
        index = rng.choice(neutral_indices)
        annotations.append(
            _Annotation(index, SPECIAL_CASE, 1, sentences[index].text, "Special case.")
        )
    return annotations


def _annotation_copy(rng: random.Random, text: str, symptom: str) -> str:
    """The annotation's copy of an evidence sentence: usually exact, sometimes not."""
    roll = rng.random()
    if roll < 0.05:  # differs only in whitespace, quotes or case: a normalised match
        return rng.choice(
            (
                lambda t: t.replace(" ", "  ", 2),
                lambda t: t.replace("'", "\u2019"),
                lambda t: t.upper() if len(t) < 40 else t.swapcase(),
            )
        )(text)
    if roll < 0.08:  # a near copy: a fuzzy match
        for old, new in lex.PARAPHRASE_SWAPS:
            if old in text:
                return text.replace(old, new, 1)
        words = text.split()
        return " ".join(words[:-2] + words[-1:]) if len(words) > 4 else text
    if roll < 0.09:  # a sentence that is not in the post: unaligned
        return _fill(rng, rng.choice(lex.POSITIVE[symptom])) + " (edited)"
    return text


def _explain(rng: random.Random, symptom: str) -> str:
    description = CRITERION_DESCRIPTIONS[symptom].split(":")[0].lower()
    return rng.choice(lex.EXPLANATIONS).format(description=description)
