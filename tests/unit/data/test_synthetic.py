from __future__ import annotations

from typing import Any

from dataaug_multi_both.data.criteria import SPECIAL_CASE, SYMPTOMS
from dataaug_multi_both.data.pairs import build_pairs
from dataaug_multi_both.data.sources import load_tables
from dataaug_multi_both.data.synthetic import generate_tables


def test_deterministic_by_seed() -> None:
    a = generate_tables(50, seed=7)
    b = generate_tables(50, seed=7)
    c = generate_tables(50, seed=8)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[0].equals(c[0])


def test_realistic_mix(tokenizer: Any) -> None:
    tables = load_tables("synthetic", "main", 300, 42)
    ann = tables.annotations
    assert set(SYMPTOMS) <= set(ann["DSM5_symptom"])
    assert (ann["status"] == 0).any() and (ann["DSM5_symptom"] == SPECIAL_CASE).any()
    pairs = build_pairs(tables, 9, 0.75)
    labels = pairs.label_matrix()
    assert any(sum(row) == 0 for row in labels) and any(sum(row) >= 3 for row in labels)
    counts = pairs.report.as_dict()
    assert counts["exact"] > counts["normalised"] > 0 and counts["fuzzy"] > 0
    lengths = [len(tokenizer(t)["input_ids"]) for t in tables.posts["text"]]
    assert max(lengths) > 512
    # wording varies: many distinct evidence sentences per symptom
    positives = ann[(ann["status"] == 1) & (ann["DSM5_symptom"] == "SLEEP_ISSUES")]
    assert positives["sentence_text"].nunique() >= 15
