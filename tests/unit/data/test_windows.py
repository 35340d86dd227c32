"""Sliding windows, targets and the mapping back to character offsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dataaug_multi_both.data.criteria import SYMPTOMS
from dataaug_multi_both.data.features import (
    PairTemplate,
    context_budget,
    criterion_token_ids,
    load_or_tokenise,
    tokenise_posts,
    window_bounds,
)
from dataaug_multi_both.data.pairs import build_pairs
from dataaug_multi_both.data.tables import ANNOTATION_COLUMNS, normalise_tables
from dataaug_multi_both.data.windows import InputBuilder, build_window_table
from dataaug_multi_both.training.inference import _char_span

EVIDENCE = "I keep thinking about ending it all."
LONG_POST = " ".join(["We went to the beach once this summer."] * 60 + [EVIDENCE, "Bye."])


def test_window_bounds_overlap_by_stride() -> None:
    assert window_bounds(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert window_bounds(3, 4, 1) == [(0, 3)]
    assert window_bounds(0, 4, 1) == [(0, 0)]


def test_bert_pair_template(tokenizer: Any) -> None:
    t = PairTemplate.from_tokenizer(tokenizer)
    assert t.prefix == (tokenizer.cls_token_id,)
    assert t.middle == (tokenizer.sep_token_id,)
    assert t.suffix == (tokenizer.sep_token_id,)
    assert (t.type_a, t.type_b, t.uses_token_types) == (0, 1, True)


def build(tokenizer: Any, max_length: int = 64, stride: int = 16) -> tuple[Any, InputBuilder, Any]:
    posts = pd.DataFrame({"post_id": ["long"], "text": [LONG_POST]})
    ann = pd.DataFrame(
        [("long", "s_0_0_60", EVIDENCE, "SUICIDAL_THOUGHTS", 1, "x")],
        columns=list(ANNOTATION_COLUMNS),
    )
    pairs = build_pairs(normalise_tables(posts, ann, "t"), 9, 0.8)
    template = PairTemplate.from_tokenizer(tokenizer)
    crit = criterion_token_ids(tokenizer, pairs.criteria)
    budget = context_budget(max_length, template, crit)
    builder = InputBuilder(template, crit, tokenise_posts(tokenizer, pairs.texts, budget, stride))
    return pairs, builder, build_window_table(pairs, builder, [0])


def test_evidence_beyond_the_first_window_is_found(tokenizer: Any) -> None:
    pairs, builder, table = build(tokenizer)
    criterion = SYMPTOMS.index("SUICIDAL_THOUGHTS")
    rows = [r for r in range(len(table)) if table.criterion[r] == criterion]
    assert len(rows) > 5  # the post is far longer than one window; nothing truncated
    positive = [r for r in rows if table.label[r] == 1]
    assert positive and all(table.window[r] != table.window[rows[0]] for r in positive)
    r = positive[-1]
    batch = builder.batch(table, [r])
    ids = batch["input_ids"][0].tolist()
    answer = tokenizer.decode(ids[table.start[r] : table.end[r] + 1])
    assert answer == EVIDENCE.lower()
    span = _char_span(builder, table, r, int(table.start[r]), int(table.end[r]))
    assert LONG_POST[span[0] : span[1]] == EVIDENCE
    # every other criterion: negative everywhere, span target [CLS]
    others = [x for x in range(len(table)) if table.criterion[x] != criterion]
    assert all(table.label[x] == 0 and table.start[x] == 0 for x in others)


def test_inputs_respect_max_length_and_masks(tokenizer: Any) -> None:
    _, builder, table = build(tokenizer, max_length=64)
    batch = builder.batch(table, list(range(len(table))))
    assert batch["input_ids"].shape[1] <= 64
    assert int(table.length.max()) <= 64
    lengths = batch["attention_mask"].sum(1)
    assert (lengths == __import__("torch").from_numpy(table.length)).all()
    assert batch["span_mask"][:, 0].all()  # position 0 is always selectable: "no evidence"


def test_feature_cache_hit_returns_identical_features(tokenizer: Any, tmp_path: Path) -> None:
    texts = ("one two three", LONG_POST)
    first, hit1 = load_or_tokenise(tmp_path, {"k": 1}, tokenizer, texts, 40, 8)
    second, hit2 = load_or_tokenise(tmp_path, {"k": 1}, tokenizer, texts, 40, 8)
    assert (hit1, hit2) == (False, True)
    for name in ("token_ids", "offsets", "starts", "windows"):
        assert (getattr(first, name) == getattr(second, name)).all()
    _, hit3 = load_or_tokenise(tmp_path, {"k": 2}, tokenizer, texts, 40, 8)
    assert not hit3
