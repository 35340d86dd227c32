from __future__ import annotations

from dataaug_multi_both.data.alignment import (
    AlignMethod,
    align_sentence,
    normalise_with_map,
    sentence_index_from_id,
    sentence_spans,
)

POST = "I'm tired. I can't sleep at all.\n\nWork is fine. I can't sleep at all. Bye!"


def test_sentence_spans() -> None:
    spans = sentence_spans(POST)
    assert [POST[s:e] for s, e in spans] == [
        "I'm tired.",
        "I can't sleep at all.",
        "Work is fine.",
        "I can't sleep at all.",
        "Bye!",
    ]


def test_sentence_index_from_id() -> None:
    assert sentence_index_from_id("s_12_34_5") == 5
    assert sentence_index_from_id("s_12_x") is None


def test_exact_match_picks_the_occurrence_of_the_annotated_index() -> None:
    first = align_sentence(POST, "I can't sleep at all.", 1, 0.8)
    second = align_sentence(POST, "I can't sleep at all.", 3, 0.8)
    assert first.method is AlignMethod.EXACT and second.method is AlignMethod.EXACT
    assert first.start == POST.index("I can't sleep")
    assert second.start == POST.rindex("I can't sleep")
    assert POST[second.start : second.end] == "I can't sleep at all."


def test_normalised_match_whitespace_quotes_case() -> None:
    found = align_sentence(POST, "  i CAN\u2019T   sleep at all.", 3, 0.8)
    assert found.method is AlignMethod.NORMALISED
    assert POST[found.start : found.end] == "I can't sleep at all."
    assert found.start == POST.rindex("I can't sleep")


def test_fuzzy_match_above_threshold() -> None:
    found = align_sentence(POST, "Work is really fine.", None, 0.75)
    assert found.method is AlignMethod.FUZZY
    assert POST[found.start : found.end] == "Work is fine."


def test_unaligned_below_threshold() -> None:
    found = align_sentence(POST, "My dog ate my homework yesterday.", None, 0.75)
    assert found.method is AlignMethod.UNALIGNED and not found.aligned


def test_normalise_map_points_back_to_original_characters() -> None:
    text = "A  B\u2019c"
    norm, origin = normalise_with_map(text)
    assert norm == "a b'c"
    assert [text[i] for i in origin] == ["A", " ", "B", "\u2019", "c"]
