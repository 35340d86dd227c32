"""The one renderer of every listing command."""

from __future__ import annotations

import json
import math

from rich.console import Console

from dataaug_multi_both.cli._formats import (
    Column,
    metric_header,
    render_csv,
    render_json,
    render_table,
)

RECORDS = [
    {"id": "a", "value": 0.123456, "ok": True, "extra": {"k": 1}},
    {"id": "b", "value": math.nan, "ok": False, "extra": None},
    {"id": "c", "value": None, "ok": None, "extra": None},
]


def test_table_cells() -> None:
    console = Console(width=120, record=True)
    console.print(
        render_table(RECORDS, [Column("id", "ID"), Column("value", "V"), Column("ok", "OK")])
    )
    text = console.export_text()
    assert "0.1235" in text and "n/a" in text and "True" in text and "False" in text and "-" in text


def test_a_timestamp_column_shows_the_date_in_the_table_only() -> None:
    records = [{"created": "2026-11-27T21:05:10Z"}]
    console = Console(width=80, record=True)
    console.print(render_table(records, [Column("created", "Created", as_date=True)]))
    text = console.export_text()
    assert "2026-11-27" in text and "21:05" not in text
    assert json.loads(render_json(records))[0]["created"] == "2026-11-27T21:05:10Z"


def test_json_is_strict_and_csv_keeps_nested_values() -> None:
    rows = json.loads(render_json(RECORDS))
    assert rows[1]["value"] is None and rows[0]["extra"] == {"k": 1}
    lines = render_csv(RECORDS, ["id", "value", "extra"]).splitlines()
    assert lines[0] == "id,value,extra"
    assert lines[1] == 'a,0.123456,"{""k"": 1}"'
    assert lines[3] == "c,,"


def test_metric_header() -> None:
    assert metric_header("val/criteria_matcher/f1") == "val/cm/f1"
    assert metric_header("system/disk_free_gb") == "sys/disk_free_gb"
