"""Writing prediction records as they come: JSON lines (one post per line), CSV (one row per
post and criterion) or one self-contained HTML page (no network, no external assets; the
post text is escaped: posts are untrusted input)."""

from __future__ import annotations

import csv
import html
import json
from typing import Any, TextIO

CSV_COLUMNS = (
    "post_id",
    "criterion",
    "probability",
    "present",
    "threshold",
    "evidence_text",
    "evidence_start",
    "evidence_end",
    "evidence_score",
)
# one colour per criterion (colour-blind-safe palette, Okabe-Ito and Tol's light)
COLOURS = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#BBCC33",
    "#99DDFF",
)


class RecordWriter:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def begin(self, criteria: tuple[str, ...], source: str) -> None:
        """Called once before the first record."""

    def write(self, record: dict[str, Any], text: str) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """Called once after the last record."""


class JsonlWriter(RecordWriter):
    def write(self, record: dict[str, Any], text: str) -> None:
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")


class CsvWriter(RecordWriter):
    def begin(self, criteria: tuple[str, ...], source: str) -> None:
        self.writer = csv.writer(self.out, lineterminator="\n")
        self.writer.writerow(CSV_COLUMNS)

    def write(self, record: dict[str, Any], text: str) -> None:
        for entry in record["criteria"]:
            evidence = entry["evidence"] or {}
            self.writer.writerow(
                [
                    record["post_id"],
                    entry["criterion"],
                    "" if entry["probability"] is None else f"{entry['probability']:.6f}",
                    entry["present"],
                    f"{entry['threshold']:.6f}",
                    evidence.get("text", ""),
                    evidence.get("start", ""),
                    evidence.get("end", ""),
                    "" if not evidence else f"{evidence['score']:.4f}",
                ]
            )


class HtmlWriter(RecordWriter):
    def begin(self, criteria: tuple[str, ...], source: str) -> None:
        self.colour = {c: COLOURS[i % len(COLOURS)] for i, c in enumerate(criteria)}
        legend = "".join(
            f'<span class="tag" style="background:{self.colour[c]}">{html.escape(c)}</span>'
            for c in criteria
        )
        self.out.write(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>dataaug-multi-both predictions</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
            ".post{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}"
            ".text{white-space:pre-wrap;line-height:1.6}"
            ".tag{display:inline-block;padding:0 .4em;margin:.1em;border-radius:4px}"
            "mark{padding:0 .1em;border-radius:3px}"
            "table{border-collapse:collapse;margin-top:.6em;font-size:.9em}"
            "td,th{padding:.1em .6em;text-align:left}"
            ".no{color:#888}"
            "</style></head><body>\n"
            f"<h1>Predictions</h1><p>Model: {html.escape(source)}. A research tool, not a "
            "diagnostic device.</p><p>Criteria: "
            f"{legend}</p>\n"
        )

    def write(self, record: dict[str, Any], text: str) -> None:
        present = [e for e in record["criteria"] if e["present"]]
        rows = "".join(
            f"<tr class=\"{'' if e['present'] else 'no'}\"><td>"
            f'<span class="tag" style="background:{self.colour[e["criterion"]]}">'
            f"{html.escape(e['criterion'])}</span></td><td>{_probability(e)}</td>"
            f"<td>{'present' if e['present'] else 'absent'} (threshold {e['threshold']:.2f})"
            "</td></tr>"
            for e in record["criteria"]
        )
        self.out.write(
            f'<section class="post"><h2>{html.escape(record["post_id"])}</h2>'
            f'<div class="text">{self._highlighted(text, present) or "<em>(empty post)</em>"}</div>'
            f"<table><tr><th>criterion</th><th>probability</th><th>decision</th></tr>{rows}"
            "</table></section>\n"
        )

    def _highlighted(self, text: str, present: list[dict[str, Any]]) -> str:
        """The post with each evidence span marked in its criterion's colour; where spans
        overlap, the piece carries the first criterion's colour and every name in its title."""
        spans = [
            (e["evidence"]["start"], e["evidence"]["end"], e["criterion"])
            for e in present
            if e["evidence"]
        ]
        cuts = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
        pieces = []
        for left, right in zip(cuts, cuts[1:], strict=False):
            covering = [c for s, e, c in spans if s <= left and right <= e]
            piece = html.escape(text[left:right])
            if covering:
                title = html.escape(", ".join(covering))
                piece = (
                    f'<mark style="background:{self.colour[covering[0]]}" title="{title}">'
                    f"{piece}</mark>"
                )
            pieces.append(piece)
        return "".join(pieces)

    def end(self) -> None:
        self.out.write("</body></html>\n")


def _probability(entry: dict[str, Any]) -> str:
    return "n/a" if entry["probability"] is None else f"{entry['probability']:.3f}"


WRITERS: dict[str, type[RecordWriter]] = {
    "jsonl": JsonlWriter,
    "csv": CsvWriter,
    "html": HtmlWriter,
}
