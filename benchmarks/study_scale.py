"""How a study's cost grows with its number of trials: 1,000 trials on one machine.

    python benchmarks/study_scale.py [--trials 1000] [--json out.json] [--plots DIR]
    python benchmarks/study_scale.py --quick            # 60 trials, the same curves (make bench)

One `hpo` study of trials made as short as the real code allows (tiny-bert, 20 synthetic
posts, one epoch of 64-token windows, one thread), SQLite storage, the default sampler and
pruner (TPE, median), MLflow on (the local store). For every trial, from `hpo.jsonl` and the
trial's `train.jsonl`:

- overhead: the wall time between the end of the previous trial and the end of this one,
  minus the trial's own training and validation (train.jsonl `timing`): sampling, storage,
  set-up, checkpoint I/O, study-wide retention, reporting, MLflow;
- the worker's RSS (`rss_mb` of `trial_end`);
- the study directory's bytes, the MLflow store's bytes and the retained checkpoint bytes,
  sampled each time a trial ends.

Then the management commands are timed on the finished study: list_studies,
list_checkpoints (the best trial), cleanup --dry-run and evaluate_study. The JSON has every
per-trial row and a summary (overhead at trials 10, 100, 1,000 as medians of the 9 trials
around each; slopes); `--plots` writes the curves as PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import REPO, cli, machine, read_jsonl, tree_bytes, write_json

TRIAL = [
    "--config",
    str(REPO / "configs" / "hpo_small.yaml"),
    "search_space.model_id.choices=[tiny-bert]",
    "dataset.synthetic_num_posts=20",
    "dataset.max_length=64",
    "dataset.doc_stride=16",
    "trainer.max_epochs=1",
    "trainer.num_threads=1",
    # the defaults of the contract's study, not hpo_small's test settings
    "study.pruner.type=MedianPruner",
    "study.pruner.n_startup_trials=5",
    "study.pruner.n_warmup_steps=1",
]


class Sampler:
    """Each time a trial ends (a new `trial_end` in hpo.jsonl): the bytes of the study
    directory, of the MLflow store and of the retained checkpoints."""

    def __init__(self, experiments: Path) -> None:
        self.experiments = experiments
        self.rows: dict[int, dict[str, int]] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        seen = 0
        while not self.done.is_set():
            log = next(self.experiments.glob("study_*/logs/hpo.jsonl"), None)
            ends = 0
            if log is not None:
                ends = sum(1 for line in log.read_text().splitlines() if '"trial_end"' in line)
            if ends > seen:
                seen = ends
                study = log.parent.parent  # type: ignore[union-attr]
                self.rows[ends] = {
                    "study_dir_bytes": tree_bytes(study),
                    "mlflow_bytes": _mlflow_bytes(self.experiments),
                    "checkpoint_bytes": sum(
                        p.stat().st_size for p in self.experiments.glob("trial_*/checkpoints/*.pt")
                    ),
                }
            time.sleep(0.2)


def _mlflow_bytes(experiments: Path) -> int:
    total = sum(p.stat().st_size for p in experiments.glob("mlflow.db*") if p.is_file())
    artifacts = experiments / "mlartifacts"
    return total + (tree_bytes(artifacts) if artifacts.is_dir() else 0)


def run_study(workdir: Path, trials: int) -> tuple[float, Sampler]:
    experiments = workdir / "experiments"
    experiments.mkdir()
    sampler = Sampler(experiments)
    sampler.thread.start()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        cli("hpo", "--num-trials", str(trials), "--study-name", "scale", *TRIAL),
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - started
    time.sleep(0.5)
    sampler.done.set()
    sampler.thread.join()
    if done.returncode != 0:
        raise SystemExit(f"hpo failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, sampler


def trial_rows(experiments: Path, sampler: Sampler) -> list[dict[str, Any]]:
    study = next(experiments.glob("study_*"))
    ends = [e for e in read_jsonl(study / "logs" / "hpo.jsonl") if e["event"] == "trial_end"]
    start = next(
        e["timestamp"]
        for e in read_jsonl(study / "logs" / "hpo.jsonl")
        if e["event"] == "study_start"
    )
    rows = []
    previous = start
    for index, end in enumerate(ends, start=1):
        log = experiments / end["trial_id"] / "logs" / "train.jsonl"
        epochs = [r for r in read_jsonl(log) if r["event"] == "epoch_end"] if log.is_file() else []
        training = sum(r["timing"]["train_sec"] + r["timing"]["eval_sec"] for r in epochs)
        checkpoint = sum(r["timing"]["checkpoint_sec"] for r in epochs)
        cycle = end["timestamp"] - previous
        previous = end["timestamp"]
        rows.append(
            {
                "trial": index,
                "state": end["state"],
                "cycle_sec": round(cycle, 4),
                "training_sec": round(training, 4),
                "checkpoint_sec": round(checkpoint, 4),
                "overhead_sec": round(cycle - training, 4),
                "rss_mb": end["rss_mb"],
                **sampler.rows.get(index, {}),
            }
        )
    return rows


def timed_command(command: list[str], cwd: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "exit_code": done.returncode}


def management(workdir: Path) -> dict[str, Any]:
    experiments = workdir / "experiments"
    study = next(experiments.glob("study_*"))
    record = json.loads((study / "study.json").read_text())
    best = record.get("best") or {}
    best_trial = experiments / str(best.get("trial_id", ""))
    return {
        "list_studies": timed_command(cli("list_studies"), workdir),
        "list_checkpoints": timed_command(
            cli("list_checkpoints", "--trial-dir", str(best_trial)), workdir
        ),
        "cleanup --dry-run": timed_command(
            cli("cleanup", "--study-dir", str(study), "--dry-run"), workdir
        ),
        "evaluate_study": timed_command(cli("evaluate_study", "--study-dir", str(study)), workdir),
    }


def around(rows: list[dict[str, Any]], trial: int, key: str) -> float | None:
    """Median of `key` over the 9 trials centred on `trial` (the trials that exist: 5 at
    the last trial)."""
    window = [r[key] for r in rows if abs(r["trial"] - trial) <= 4 and key in r]
    return round(statistics.median(window), 4) if window else None


MIN_SLOPE_POINTS = 40  # fewer trials than this give a slope that is mostly noise


def slope(rows: list[dict[str, Any]], key: str, skip: int = 10) -> float | None:
    """Least-squares slope of `key` per trial, after the first `skip` trials (set-up and
    warm-up); None where fewer than MIN_SLOPE_POINTS trials remain."""
    points = [(r["trial"], r[key]) for r in rows[skip:] if r.get(key) is not None]
    if len(points) < MIN_SLOPE_POINTS:
        return None
    xs, ys = zip(*points, strict=True)
    return statistics.linear_regression(xs, ys).slope


def summary(rows: list[dict[str, Any]], trials: int) -> dict[str, Any]:
    marks = sorted({10, 100, trials} & set(range(1, trials + 1)) | {min(trials, 50)})
    out: dict[str, Any] = {f"overhead_sec_at_{m}": around(rows, m, "overhead_sec") for m in marks}
    out.update({f"rss_mb_at_{m}": around(rows, m, "rss_mb") for m in marks})
    for key in ("overhead_sec", "rss_mb", "study_dir_bytes", "mlflow_bytes", "checkpoint_bytes"):
        out[f"{key}_slope_per_trial"] = slope(rows, key)
    late, early = out.get(f"overhead_sec_at_{trials}"), out.get("overhead_sec_at_100")
    if late is not None and early:
        out["overhead_ratio_last_vs_100"] = round(late / early, 3)
    return out


def plot(rows: list[dict[str, Any]], directory: Path, title: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    trials = [r["trial"] for r in rows]
    written = []
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(
        trials, [r["overhead_sec"] for r in rows], ".", markersize=3, alpha=0.4, label="per trial"
    )
    smooth = [around(rows, t, "overhead_sec") for t in trials]
    axis.plot(trials, smooth, "-", color="C3", label="median of the 9 around each trial")
    axis.plot(
        trials,
        [r["training_sec"] for r in rows],
        "-",
        color="C2",
        alpha=0.6,
        label="training + validation",
    )
    axis.set(xlabel="trial", ylabel="seconds", title=f"Per-trial overhead ({title})")
    axis.legend(markerscale=4)
    figure.tight_layout()
    figure.savefig(directory / "study_scale_overhead.png", dpi=100)
    written.append("study_scale_overhead.png")
    plt.close(figure)

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (
        ("study_dir_bytes", "study directory"),
        ("mlflow_bytes", "MLflow store"),
        ("checkpoint_bytes", "retained checkpoints"),
    ):
        points = [(r["trial"], r[key] / 1e6) for r in rows if key in r]
        if points:
            left.plot(*zip(*points, strict=True), label=label)
    left.set(xlabel="trial", ylabel="MB (10^6 bytes)", title="Bytes on disk")
    left.legend()
    right.plot(
        trials,
        [r["rss_mb"] for r in rows],
        ".",
        markersize=3,
        alpha=0.4,
        color="C4",
        label="per trial",
    )
    right.plot(
        trials,
        [around(rows, t, "rss_mb") for t in trials],
        "-",
        color="C3",
        label="median of the 9 around each trial",
    )
    right.set(xlabel="trial", ylabel="MiB", title="Worker RSS (at each trial's end)")
    right.legend(loc="center right", fontsize="small", markerscale=4)
    figure.tight_layout()
    figure.savefig(directory / "study_scale_bytes.png", dpi=100)
    written.append("study_scale_bytes.png")
    plt.close(figure)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, help="trials in the study (default 1000)")
    parser.add_argument("--quick", action="store_true", help="60 trials (replaces --trials)")
    parser.add_argument("--json", type=Path, help="write the result here (every trial's row)")
    parser.add_argument("--plots", type=Path, help="directory for the PNG curves")
    parser.add_argument(
        "--keep", type=Path, help="run in this directory (without an experiments/) and keep it"
    )
    parser.add_argument(
        "--replot", type=Path, help="only draw the curves of this JSON result (needs --plots)"
    )
    args = parser.parse_args()
    if args.quick and args.trials is not None:
        parser.error("--quick runs 60 trials: give --quick or --trials, not both")
    if args.replot:
        if not args.plots:
            parser.error("--replot needs --plots DIR")
        done = json.loads(args.replot.read_text())
        plot(done["rows"], args.plots, f"{done['trials']} trials, {done['machine']['cores']} cores")
        return None
    if args.keep and (args.keep / "experiments").exists():
        parser.error(f"{args.keep / 'experiments'} exists: --keep needs a directory without one")
    trials = 60 if args.quick else (1000 if args.trials is None else args.trials)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        wall, sampler = run_study(workdir, trials)
        rows = trial_rows(workdir / "experiments", sampler)
        commands = management(workdir)
        total = {
            "experiments_bytes": tree_bytes(workdir / "experiments", skip=()),
            "trial_dirs": len(list((workdir / "experiments").glob("trial_*"))),
        }
    result = {
        "benchmark": "study_scale",
        "machine": machine(),
        "trials": trials,
        "settings": TRIAL[2:],
        "wall_sec": round(wall, 1),
        "summary": summary(rows, trials),
        "management_commands": commands,
        "final": total,
        "rows": rows,
    }
    if args.plots:
        result["plots"] = plot(
            rows, args.plots, f"{trials} trials, {result['machine']['cores']} cores"
        )
    write_json(args.json, result)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
