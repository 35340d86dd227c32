"""PNG plots next to `evaluation_report.json`: a precision-recall curve per criterion and a
reliability (calibration) diagram of the matcher's probabilities."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from dataaug_multi_both.checkpointing.atomic import atomic_write_bytes
from dataaug_multi_both.training.curves import PrecisionRecall, ReliabilityBins


def write_evaluation_plots(
    paths: dict[str, Path],
    curves: dict[str, PrecisionRecall],
    operating_points: dict[str, tuple[float, float, float]],
    positive_rates: dict[str, float],
    reliability: ReliabilityBins,
    split: str,
) -> list[Path]:
    """`operating_points`: per criterion (recall, precision, threshold) at the stored
    threshold; `positive_rates`: per criterion, the share of posts that show it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {
        "precision_recall": lambda: _precision_recall_figure(
            plt, curves, operating_points, positive_rates, split
        ),
        "reliability": lambda: _reliability_figure(plt, reliability, split),
    }
    for name, draw in figures.items():
        figure = draw()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        atomic_write_bytes(paths[name], buffer.getvalue())
    return list(paths.values())


def _precision_recall_figure(
    plt: Any,
    curves: dict[str, PrecisionRecall],
    operating_points: dict[str, tuple[float, float, float]],
    positive_rates: dict[str, float],
    split: str,
) -> Any:
    columns = 3
    rows = max(1, -(-len(curves) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(12, 3.6 * rows), squeeze=False)
    for ax, (name, curve) in zip(axes.flat, curves.items(), strict=False):
        recall, precision, threshold = operating_points[name]
        ap = "n/a" if curve.average_precision is None else f"{curve.average_precision:.2f}"
        ax.set_title(
            f"{name}\nAP {ap} · {positive_rates[name]:.0%} of posts · t={threshold:.3f}",
            fontsize=9,
        )
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        if curve.average_precision is None:  # no positive post: nothing to rank
            ax.text(0.5, 0.5, f"no positive post\nin the {split} split", ha="center", va="center")
            continue
        ax.step(np.r_[0.0, curve.recall], np.r_[curve.precision[0], curve.precision], where="pre")
        ax.axhline(positive_rates[name], color="grey", linestyle="--", linewidth=0.8)
        ax.plot([recall], [precision], "o", color="crimson")
    for ax in list(axes.flat)[len(curves) :]:
        ax.axis("off")
    figure.suptitle(
        f"criteria matcher on the {split} split: precision-recall per criterion "
        "(dot: the stored threshold t; dashed: positive rate = a random ranker)",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def _reliability_figure(plt: Any, bins: ReliabilityBins, split: str) -> Any:
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    filled = bins.count > 0
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect")
    top.plot(bins.mean_probability[filled], bins.positive_rate[filled], "o-", label="model")
    ece = bins.expected_calibration_error
    top.set_title(
        f"reliability on the {split} split (ECE {'n/a' if ece is None else f'{ece:.3f}'})",
        fontsize=10,
    )
    top.set_ylabel("observed positive rate")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    width = bins.edges[1] - bins.edges[0]
    bars = bottom.bar(centres, bins.count, width=width * 0.9)
    bottom.bar_label(bars, fontsize=7)
    bottom.set_ylim(0, max(1, int(bins.count.max())) * 1.25)
    bottom.set_xlabel(f"predicted probability ({int(bins.count.sum())} criterion-post pairs)")
    bottom.set_ylabel("pairs")
    bottom.set_xlim(0, 1)
    figure.tight_layout()
    return figure
