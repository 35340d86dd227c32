"""From ReDSM5 tables to (criterion, post) pairs with labels and gold evidence spans.

Label rule: a pair is positive iff some annotation of that post and symptom has status 1
(status-0 rows on the same pair do not cancel it, not even on the same sentence: such
conflicting-status rows are counted); its evidence spans are those sentences. A post without
annotations is negative for every criterion, as is a post with only SPECIAL_CASE rows
(counted). SPECIAL_CASE rows are never trained on. Identical (sentence, symptom, status) rows
are counted once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dataaug_multi_both.data.alignment import AlignMethod, align_sentence, sentence_index_from_id
from dataaug_multi_both.data.criteria import SPECIAL_CASE, criteria_for
from dataaug_multi_both.data.tables import RedSM5Tables


@dataclass(frozen=True)
class PairExample:
    post_index: int  # row of the post in `PairSet.post_ids`
    criterion: int  # index into the criteria, model order
    label: int  # 1 = the post shows the symptom
    spans: tuple[tuple[int, int], ...]  # aligned gold evidence, character offsets, sorted
    unaligned_evidence: bool  # some status-1 sentence could not be located in the post


@dataclass
class AlignmentReport:
    counts: Counter = field(default_factory=Counter)  # AlignMethod value -> status-1 rows
    special_case_rows: int = 0
    special_case_only_posts: int = 0  # every annotation of the post is SPECIAL_CASE
    conflicting_status_rows: int = 0  # rows of a (post, sentence, symptom) with status 0 and 1
    duplicate_rows: int = 0
    status0_only_pairs: int = 0
    positive_pairs: int = 0
    pairs: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            **{m.value: int(self.counts.get(m.value, 0)) for m in AlignMethod},
            "special_case_rows": self.special_case_rows,
            "special_case_only_posts": self.special_case_only_posts,
            "conflicting_status_rows": self.conflicting_status_rows,
            "duplicate_rows": self.duplicate_rows,
            "status0_only_pairs": self.status0_only_pairs,
            "positive_pairs": self.positive_pairs,
            "pairs": self.pairs,
        }


@dataclass(frozen=True)
class PairSet:
    post_ids: tuple[str, ...]
    texts: tuple[str, ...]
    criteria: tuple[str, ...]
    examples: tuple[PairExample, ...]  # post-major: all criteria of post 0, then post 1, ...
    report: AlignmentReport

    def label_matrix(self) -> list[list[int]]:
        """labels[post][criterion]."""
        width = len(self.criteria)
        matrix = [[0] * width for _ in self.post_ids]
        for ex in self.examples:
            matrix[ex.post_index][ex.criterion] = ex.label
        return matrix


def build_pairs(tables: RedSM5Tables, num_criteria: int, threshold: float) -> PairSet:
    criteria = criteria_for(num_criteria)
    column = {name: i for i, name in enumerate(criteria)}
    post_ids = tuple(tables.posts["post_id"])
    texts = tuple(tables.posts["text"])
    row_of = {pid: i for i, pid in enumerate(post_ids)}
    report = AlignmentReport()

    annotations = tables.annotations
    report.special_case_rows = int((annotations["DSM5_symptom"] == SPECIAL_CASE).sum())
    unique = annotations.drop_duplicates(
        subset=["post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status"]
    )
    report.duplicate_rows = len(annotations) - len(unique)
    special = annotations["DSM5_symptom"] == SPECIAL_CASE
    report.special_case_only_posts = int(special.groupby(annotations["post_id"]).all().sum())
    relevant = unique[unique["DSM5_symptom"].isin(criteria)]
    statuses = relevant.groupby(["post_id", "sentence_id", "DSM5_symptom"])["status"]
    report.conflicting_status_rows = int((statuses.transform("nunique") > 1).sum())

    positive: dict[tuple[int, int], list[tuple[int, int]]] = {}
    unaligned: set[tuple[int, int]] = set()
    considered: set[tuple[int, int]] = set()
    for row in relevant.itertuples(index=False):
        key = (row_of[row.post_id], column[row.DSM5_symptom])
        considered.add(key)
        if int(row.status) != 1:
            continue
        spans = positive.setdefault(key, [])
        found = align_sentence(
            texts[key[0]], row.sentence_text, sentence_index_from_id(row.sentence_id), threshold
        )
        report.counts[found.method.value] += 1
        if found.aligned:
            spans.append((found.start, found.end))
        else:
            unaligned.add(key)

    examples = []
    for p in range(len(post_ids)):
        for c in range(len(criteria)):
            gold = tuple(sorted(set(positive.get((p, c), []))))
            label = int((p, c) in positive)
            examples.append(PairExample(p, c, label, gold, (p, c) in unaligned))
    report.pairs = len(examples)
    report.positive_pairs = len(positive)
    report.status0_only_pairs = len(considered - set(positive))
    return PairSet(post_ids, texts, criteria, tuple(examples), report)
