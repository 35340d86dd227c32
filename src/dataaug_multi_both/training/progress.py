"""What the user sees on stdout: a progress bar per epoch (ETA, loss) and a metric table.

On a terminal the bar is a live rich progress bar; in a log file (not a terminal) it is a
plain line at every quarter of the epoch, so logs stay readable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dataaug_multi_both.metric_names import is_per_criterion


class EpochProgress:
    def __init__(
        self, console: Console, description: str, total: int, plain_lines: bool = True
    ) -> None:
        self.console = console
        self.plain_lines = plain_lines  # in a log file: a line per quarter epoch
        self.description = description
        self.total = total
        self.done = 0
        self.skipped = 0  # batches a mid-epoch resume did not run again
        self.started = time.perf_counter()
        self._next_quarter = 1
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> EpochProgress:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total, loss="-")
        return self

    def advance_by(self, batches: int) -> None:
        """Start `batches` in (a mid-epoch resume): shown as done, left out of the ETA."""
        self.done = self.skipped = batches
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=batches)
        while self.total and self.done * 4 >= self._next_quarter * self.total:
            self._next_quarter += 1

    def advance(self, loss: float) -> None:
        self.done += 1
        loss_text = f"{loss:.4f}"
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, loss=loss_text)
            return
        if self.plain_lines and self.done * 4 >= self._next_quarter * self.total:
            elapsed = time.perf_counter() - self.started
            eta = elapsed / max(1, self.done - self.skipped) * (self.total - self.done)
            self.console.print(
                f"{self.description} {self.done}/{self.total} loss {loss_text} "
                f"elapsed {elapsed:.0f}s ETA {eta:.0f}s",
                highlight=False,
            )
            while self.done * 4 >= self._next_quarter * self.total:
                self._next_quarter += 1

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


@contextmanager
def epoch_progress(
    console: Console, description: str, total: int, plain_lines: bool = True
) -> Iterator[EpochProgress]:
    with EpochProgress(console, description, total, plain_lines) as progress:
        yield progress


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def metrics_table(
    epoch: int,
    max_epochs: int,
    metrics: Mapping[str, float | None],
    best_metric: str,
    group_notes: Mapping[str, str] | None = None,
) -> Table:
    """Compact table: one row per group (train / val criteria / val evidence / system);
    `group_notes` says what a group is computed on (e.g. "48 posts")."""
    table = Table(
        title=f"epoch {epoch}/{max_epochs}",
        title_justify="left",
        caption="* the optimisation metric",
        caption_justify="left",
        show_header=True,
        box=None,
    )
    table.add_column("group", style="bold")
    table.add_column("metrics")
    groups: dict[str, list[str]] = {}
    per_criterion_thresholds = [
        v
        for k, v in metrics.items()
        if "/threshold_" in k and is_per_criterion(k) and v is not None
    ]
    for name, value in metrics.items():
        if is_per_criterion(name):
            continue  # per-criterion values go to the log and MLflow, not the summary
        group, _, short = name.rpartition("/")
        star = "*" if name == best_metric else ""
        if short == "threshold" and per_criterion_thresholds:
            continue  # shown below as the range actually applied
        groups.setdefault(group, []).append(f"{short}{star}={_fmt(value)}")
    if per_criterion_thresholds:
        low, high = min(per_criterion_thresholds), max(per_criterion_thresholds)
        groups.setdefault("val/criteria_matcher", []).append(
            f"thresholds={low:.4f}..{high:.4f} (per criterion)"
        )
    for group, items in groups.items():
        note = (group_notes or {}).get(group)
        table.add_row(f"{group}\n({note})" if note else group, "  ".join(items))
    return table


def epoch_display(
    progress: Any,
    max_epochs: int,
    metrics: Mapping[str, float | None],
    metric_name: str,
    group_notes: Mapping[str, str],
    verbose: bool,
) -> Table | str:
    """The metric table of a standalone run, or one line per epoch for a study's trial."""
    if verbose:
        return metrics_table(progress.epoch, max_epochs, metrics, metric_name, group_notes)
    loss = (metrics.get("train/criteria_matcher/loss") or 0.0) + (
        metrics.get("train/evidence_binder/loss") or 0.0
    )
    return (
        f"  trial {progress.trial_id} epoch {progress.epoch}/{max_epochs}: {metric_name} "
        f"{_fmt(metrics.get(metric_name))} (train loss {loss:.4f}, "
        f"{metrics.get('system/epoch_duration_sec') or 0:.0f}s)"
    )
