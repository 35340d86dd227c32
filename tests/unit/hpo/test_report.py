"""What users see of a study: the summary table's column titles."""

from __future__ import annotations

from dataaug_multi_both.hpo.report import param_headers


def test_dotted_parameters_get_distinct_column_titles() -> None:
    titles = param_headers(
        ["task_weights.criteria_matcher", "task_weights.evidence_binder", "a.x", "b.x"]
    )
    assert titles == ["criteria_matcher", "evidence_binder", "a.x", "b.x"]
