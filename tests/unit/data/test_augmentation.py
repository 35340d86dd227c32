"""Evidence-safe augmentation: the span invariant over thousands of random posts and
operation mixes (hypothesis), determinism, and the training split only."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaug_multi_both.config.schema import AugmentationConfig, DatasetConfig
from dataaug_multi_both.data.augmentation import augment_post, check_spans, sentence_bounds
from dataaug_multi_both.data.epoch_augmentation import augment_training_split
from dataaug_multi_both.data.lexicon import SAFE_SYNONYMS, SYNONYMS
from dataaug_multi_both.data.pipeline import prepare_data
from dataaug_multi_both.model.encoder import load_tokenizer, resolve_model_id

WORDS = sorted(SYNONYMS) + ["sad", "tired", "sleep", "eat", "I", "feel", "it", "and", "the"]
probability = st.floats(min_value=0.0, max_value=1.0)
configs = st.builds(
    AugmentationConfig,
    sentence_delete_prob=probability,
    sentence_shuffle_prob=probability,
    word_swap_prob=probability,
    word_delete_prob=probability,
    word_insert_prob=probability,
    synonym_prob=probability,
    evidence_synonym_prob=probability,
    evidence_noise_prob=probability,
)


@st.composite
def posts(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]]]:
    """Random sentences of lexicon and plain words; spans on whole sentences, parts of
    sentences, runs of several sentences, overlapping each other."""
    sentences = []
    for _ in range(draw(st.integers(1, 8))):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12))
        words[0] = words[0].capitalize()
        end = draw(st.sampled_from([".", "!", "?", ""]))
        sentences.append(" ".join(words) + end)
    separators = [draw(st.sampled_from([" ", "  ", "\n", " \n"])) for _ in sentences]
    text = "".join(s + sep for s, sep in zip(sentences, separators, strict=True)).rstrip()
    bounds = sentence_bounds(text)
    spans = set()
    for _ in range(draw(st.integers(0, 4))):
        first = draw(st.integers(0, len(bounds) - 1))
        last = draw(st.integers(first, min(first + 1, len(bounds) - 1)))
        start, end = bounds[first][0], len(text[: bounds[last][1]].rstrip())
        if draw(st.booleans()) and end - start > 2:  # a part of it
            start = draw(st.integers(start, end - 2))
            end = draw(st.integers(start + 1, end))
        if end > start:
            spans.add((start, end))
    return text, sorted(spans)


@settings(
    max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(post=posts(), config=configs, seed=st.integers(0, 2**32))
def test_every_span_points_at_its_evidence_after_any_mix_of_operations(
    post: tuple[str, list[tuple[int, int]]], config: AugmentationConfig, seed: int
) -> None:
    text, spans = post
    out = augment_post(text, spans, config, random.Random(seed))
    assert set(out.spans) == set(spans)
    assert check_spans(out) == []
    for span, (start, end) in out.spans.items():
        assert out.text[start:end] == out.evidence[span]
        if config.evidence_synonym_prob == 0 and config.evidence_noise_prob == 0:
            assert out.evidence[span] == text[span[0] : span[1]]  # evidence untouched
        else:  # the same words, up to safe synonyms and punctuation/whitespace noise
            words = re.findall(r"[A-Za-z']+", text[span[0] : span[1]])
            kept = [w.lower() for w in words if w.lower() not in SAFE_SYNONYMS]
            after = re.findall(r"[a-z']+", out.evidence[span].lower())
            assert all(w in after for w in kept)
    # same seed, same augmented post
    again = augment_post(text, spans, config, random.Random(seed))
    assert again == out


def test_all_off_changes_nothing() -> None:
    text = "I went out. I feel sad every day! Then we talked."
    spans = [(12, 33)]
    out = augment_post(text, spans, AugmentationConfig(), random.Random(0))
    assert out.text == text and out.spans == {(12, 33): (12, 33)} and not out.edited


def test_evidence_sentences_are_never_deleted_or_moved_inside() -> None:
    text = "One thing. I feel sad. Another thing. Something else. I am tired."
    spans = [(text.index(e), text.index(e) + len(e)) for e in ("I feel sad.", "I am tired.")]
    config = AugmentationConfig(sentence_delete_prob=1.0, sentence_shuffle_prob=1.0)
    out = augment_post(text, spans, config, random.Random(3))
    assert [out.text[s:e] for s, e in out.spans.values()] == ["I feel sad.", "I am tired."]
    assert "thing" not in out.text.replace("Something", "")  # free sentences went


@pytest.fixture(scope="module")
def prepared() -> tuple[object, object]:
    tokenizer = load_tokenizer(resolve_model_id("tiny-bert"), "main")
    dataset = DatasetConfig(dataset_id="synthetic", synthetic_num_posts=60, max_length=96)
    return tokenizer, prepare_data(dataset, 9, tokenizer, None, None)


def test_only_the_training_split_is_augmented_and_spans_hit_the_evidence(
    prepared: tuple[object, object],
) -> None:
    tokenizer, data = prepared
    config = AugmentationConfig(
        sentence_delete_prob=0.3,
        sentence_shuffle_prob=0.5,
        synonym_prob=0.3,
        word_swap_prob=0.1,
        evidence_synonym_prob=0.5,
        evidence_noise_prob=0.5,
        criterion_paraphrase_prob=0.5,
    )
    epoch_data, stats = augment_training_split(data, config, tokenizer, 96, 16, 42, 1)
    assert epoch_data.tables["validation"] is data.tables["validation"]
    assert epoch_data.tables["test"] is data.tables["test"]
    assert data.builder.posts.token_ids.size > 0 and epoch_data.builder is not data.builder
    assert stats.edited_posts > 0 and stats.paraphrased_examples > 0
    table = epoch_data.tables["train"]
    assert table.length.max() <= 96
    # a pure function of (seed, epoch)
    again, _ = augment_training_split(data, config, tokenizer, 96, 16, 42, 1)
    assert np.array_equal(again.tables["train"].length, table.length)
    other, _ = augment_training_split(data, config, tokenizer, 96, 16, 42, 2)
    assert not np.array_equal(other.builder.posts.token_ids, epoch_data.builder.posts.token_ids)


def test_span_targets_of_an_augmented_epoch_decode_to_the_gold_evidence(
    prepared: tuple[object, object],
) -> None:
    # free text edited, descriptions paraphrased (shifting every target), evidence untouched:
    # the tokens under each span target must spell one of the pair's gold sentences
    tokenizer, data = prepared
    config = AugmentationConfig(
        sentence_delete_prob=0.3,
        sentence_shuffle_prob=0.5,
        synonym_prob=0.3,
        word_insert_prob=0.2,
        criterion_paraphrase_prob=0.5,
    )
    epoch_data, stats = augment_training_split(data, config, tokenizer, 96, 16, 42, 1)
    assert stats.paraphrased_examples > 0
    table, pairs = epoch_data.tables["train"], data.pairs
    width = len(pairs.criteria)
    row_of = {pid: i for i, pid in enumerate(pairs.post_ids)}
    posts = sorted(row_of[pid] for pid in data.split.post_ids["train"])

    def squeeze(text: str) -> str:
        return "".join(text.lower().split())

    checked = set()
    for row in np.nonzero(table.start > 0)[0]:
        pair = int(table.pair[row])
        example = pairs.examples[posts[pair // width] * width + pair % width]
        gold = {squeeze(pairs.texts[example.post_index][s:e]) for s, e in example.spans}
        ids = epoch_data.builder.batch(table, [int(row)])["input_ids"][0]
        span = ids[table.start[row] : table.end[row] + 1].tolist()
        assert squeeze(tokenizer.decode(span)) in gold
        checked.add(int(table.criterion[row]) >= width)
    assert checked == {True, False}  # targets behind canonical and paraphrased descriptions


def test_bundled_config_lists_every_augmentation_key() -> None:
    text = (Path(__file__).parents[3] / "configs" / "train.yaml").read_text()
    for name in AugmentationConfig.__dataclass_fields__:
        assert f"  {name}:" in text
