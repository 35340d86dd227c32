"""What users see of a study: a progress line per trial, a summary table, plots."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from dataaug_multi_both.hpo.trials import ranked_complete
from dataaug_multi_both.metric_names import metric_sign, short_metric_title


@dataclass(frozen=True)
class StudyProgress:
    requested: int
    counts: dict[str, int]  # optuna state name -> trials
    best_value: float | None
    best_number: int | None
    elapsed_sec: float
    finished_here: int  # trials this worker finished (for its ETA)
    metric: str = ""  # the optimisation metric: the best value is shown as it (a loss too)

    @property
    def finished(self) -> int:
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0)

    def eta_sec(self) -> float | None:
        if self.finished_here == 0:
            return None
        return self.elapsed_sec / self.finished_here * max(0, self.requested - self.finished)

    def line(self) -> str:
        best = "-"
        if self.best_value is not None:
            shown = metric_sign(self.metric) * self.best_value  # the objective of a loss is -loss
            title = f"{short_metric_title(self.metric)} " if self.metric else ""
            best = f"{title}{shown:.4f} (trial {self.best_number})"
        eta = self.eta_sec()
        return (
            f"study: {self.finished}/{self.requested} trials finished "
            f"({self.counts.get('COMPLETE', 0)} complete, {self.counts.get('PRUNED', 0)} pruned, "
            f"{self.counts.get('FAIL', 0)} failed), {self.counts.get('RUNNING', 0)} running; "
            f"best {best}; elapsed {_duration(self.elapsed_sec)}, ETA {_duration(eta) if eta is not None else '-'}"
        )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def summary_table(trials: list[Any], metric: str, top: int = 10) -> Table:
    """The best `top` trials, the metric shown as itself (a loss, not the objective -loss)."""
    complete = ranked_complete(trials)
    metric_title, sign = short_metric_title(metric), metric_sign(metric)
    params = sorted({k for t in complete[:top] for k in t.params})
    table = Table(
        title=f"top {min(top, len(complete))} of {len(trials)} trials", title_justify="left"
    )
    for column in ("Rank", "Trial", metric_title):
        table.add_column(column, justify="right")
    for header in param_headers(params):
        table.add_column(header, justify="left")
    for column in ("Epochs", "Duration"):
        table.add_column(column, justify="right")
    for rank, trial in enumerate(complete[:top], start=1):
        duration = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete
            else 0
        )
        table.add_row(
            str(rank),
            str(trial.number),
            f"{sign * trial.value:.4f}",
            *(_fmt(trial.params.get(p)) for p in params),
            str(len(trial.intermediate_values)),
            _duration(duration),
        )
    return table


def param_headers(params: list[str]) -> list[str]:
    """Column titles: a dotted parameter by its last part where that is unique
    (`task_weights.criteria_matcher` -> `criteria_matcher`), so that a narrow terminal does
    not cut two columns to the same `task_weights.…`."""
    last = [p.rpartition(".")[2] for p in params]
    return [short if last.count(short) == 1 else p for p, short in zip(params, last, strict=True)]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write_plots(study: Any, directory: Path) -> list[Path]:
    """PNG plots of the study (optimization history, intermediate values, parameter
    importances); a plot that cannot be drawn yet (too few trials) is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    plots = {
        "optimization_history": lambda: ovm.plot_optimization_history(study),
        "intermediate_values": lambda: ovm.plot_intermediate_values(study),
        "param_importances": lambda: ovm.plot_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        ),
    }
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. "importances will be equal" on few trials
                axes: Any = draw()
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError):
            continue  # e.g. importances need 2+ complete trials with varied parameters
        first = axes if hasattr(axes, "figure") else axes.flat[0]  # one Axes or an array of them
        figure: Any = first.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        path = directory / f"{name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def rss_mb() -> float:
    """This process's resident memory in MB (NaN where /proc is not there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan
