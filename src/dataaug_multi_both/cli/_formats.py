"""One pure renderer for every listing command: plain records in, table / JSON / CSV out."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from dataaug_multi_both.checkpointing.manifest import json_safe

FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class Column:
    key: str  # record key
    title: str  # table header
    justify: str = "left"
    number_format: str = ".4f"  # for float values
    as_date: bool = False  # an ISO timestamp shown as its date (json/csv keep it whole)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(value: object) -> Text:
    """`value` as literal text for the terminal: Rich markup is not interpreted and control
    characters (an escape sequence in a planted file or directory name) show as `?`."""
    return Text(_CONTROL.sub("?", str(value)))


def _cell(value: Any, number_format: str, as_date: bool = False) -> Text:
    if value is None:
        return plain("-")
    if isinstance(value, bool):
        return plain(value)  # True / False, as the contract's tables show them
    if as_date and isinstance(value, str):
        return plain(value[:10])
    if isinstance(value, float):
        return plain("n/a" if math.isnan(value) else format(value, number_format))
    return plain(value)


def metric_header(name: str) -> str:
    """A short column title for a metric name (val/criteria_matcher/f1 -> val/cm/f1)."""
    return (
        name.replace("criteria_matcher", "cm")
        .replace("evidence_binder", "eb")
        .replace("system/", "sys/")
    )


def render_table(
    records: Sequence[dict[str, Any]], columns: Sequence[Column], title: str | None = None
) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.title, justify=column.justify)  # type: ignore[arg-type]
    for record in records:
        table.add_row(*(_cell(record.get(c.key), c.number_format, c.as_date) for c in columns))
    return table


def render_json(records: Sequence[dict[str, Any]]) -> str:
    return json.dumps(json_safe(list(records)), indent=2)


def render_csv(records: Sequence[dict[str, Any]], keys: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    for record in records:
        row = []
        for key in keys:
            value = record.get(key)
            row.append(
                json.dumps(value)
                if isinstance(value, dict | list)
                else ("" if value is None else value)
            )
        writer.writerow(row)
    return buffer.getvalue()
