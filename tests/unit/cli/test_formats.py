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
    assert "0.1235" in text and "n/a" in text and "yes" in text and "no" in text and "-" in text


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
