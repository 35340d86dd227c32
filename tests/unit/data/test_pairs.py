from __future__ import annotations

import pandas as pd

from dataaug_multi_both.data.criteria import SYMPTOMS
from dataaug_multi_both.data.pairs import build_pairs
from dataaug_multi_both.data.tables import ANNOTATION_COLUMNS, normalise_tables

TEXT = "I can't sleep. I sleep fine on weekends. I feel worthless."


def tables(rows: list[tuple]) -> object:
    posts = pd.DataFrame({"post_id": ["a", "b"], "text": [TEXT, "Nothing here."]})
    annotations = pd.DataFrame(
        rows,
        columns=list(ANNOTATION_COLUMNS),
    )
    return normalise_tables(posts, annotations, "test")


def test_labels_dedup_mixed_status_special_case_and_unannotated_post() -> None:
    pairs = build_pairs(
        tables(
            [
                ("a", "s_1_0_0", "I can't sleep.", "SLEEP_ISSUES", 1, "x"),
                ("a", "s_1_1_0", "I can't sleep.", "SLEEP_ISSUES", 1, "same sentence, other words"),
                ("a", "s_1_2_1", "I sleep fine on weekends.", "SLEEP_ISSUES", 0, "rejected"),
                ("a", "s_1_3_1", "I sleep fine on weekends.", "FATIGUE", 0, "only status 0"),
                ("a", "s_1_4_2", "I feel worthless.", "SPECIAL_CASE", 1, "not a criterion"),
            ]
        ),
        num_criteria=9,
        threshold=0.8,
    )
    sleep, fatigue = SYMPTOMS.index("SLEEP_ISSUES"), SYMPTOMS.index("FATIGUE")
    example = pairs.examples[0 * 9 + sleep]
    assert example.label == 1
    assert example.spans == ((0, 14),)  # the two rows give one span
    assert pairs.examples[0 * 9 + fatigue].label == 0
    assert all(e.label == 0 for e in pairs.examples[9:])  # post b has no annotation
    report = pairs.report.as_dict()
    assert report["exact"] == 2  # both status-1 SLEEP rows (distinct ids) were located
    assert report["special_case_rows"] == 1
    assert report["status0_only_pairs"] == 1  # (a, FATIGUE)
    assert report["positive_pairs"] == 1
    assert sum(e.label for e in pairs.examples) == 1  # SPECIAL_CASE is never a label


def test_exact_duplicate_rows_counted_once() -> None:
    row = ("a", "s_1_0_0", "I can't sleep.", "SLEEP_ISSUES", 1, "x")
    pairs = build_pairs(tables([row, row]), 9, 0.8)
    assert pairs.report.duplicate_rows == 1
    assert pairs.report.counts["exact"] == 1


def test_unaligned_evidence_keeps_label() -> None:
    pairs = build_pairs(
        tables([("a", "s_1_0_0", "Completely different words here.", "ANHEDONIA", 1, "x")]), 9, 0.8
    )
    example = pairs.examples[SYMPTOMS.index("ANHEDONIA")]
    assert example.label == 1 and example.spans == () and example.unaligned_evidence


def test_conflicting_statuses_and_special_case_only_posts_are_counted() -> None:
    pairs = build_pairs(
        tables(
            [
                ("a", "s_1_0_0", "I can't sleep.", "SLEEP_ISSUES", 1, "yes"),
                ("a", "s_1_0_0", "I can't sleep.", "SLEEP_ISSUES", 0, "no"),  # same sentence
                ("a", "s_1_2_1", "I sleep fine on weekends.", "SLEEP_ISSUES", 0, "other one"),
                ("b", "s_2_9_0", "Nothing here.", "SPECIAL_CASE", 1, "only this"),
            ]
        ),
        9,
        0.8,
    )
    report = pairs.report.as_dict()
    assert report["conflicting_status_rows"] == 2  # the 0 and the 1 row of one sentence
    assert report["special_case_only_posts"] == 1  # post b
    assert pairs.examples[SYMPTOMS.index("SLEEP_ISSUES")].label == 1  # status 1 wins
    assert all(e.label == 0 for e in pairs.examples[9:])
