"""Disk footprint of HPO studies as the number of trials grows, against Trainer + Optuna.

    python benchmarks/study_footprint.py [--trials 5 10 20 40] [--full] [--json out.json]

For each trial count, in a fresh directory: one `hpo` study of tiny-bert trials on the
synthetic data, and the equivalent `Trainer.hyperparameter_search(backend="optuna")` run
(`benchmarks/hf_trainer_baseline.py search`: save every epoch, save_total_limit=1,
load_best_model_at_end=True, a median pruner). The size of the output directory is sampled
while each runs (peak); the final size, the checkpoint bytes left and (ours) the per-trial
RSS from hpo.jsonl are reported. The expected shape: flat for this project (only the
study's top K trials keep a weights-only checkpoint), linear for the Trainer (every
`run-N/` keeps its checkpoints).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, baseline, cli, read_jsonl, run

ARGS = [
    "--config",
    str(REPO / "configs" / "hpo_small.yaml"),
    "search_space.model_id.choices=[tiny-bert]",
    "dataset.synthetic_num_posts=40",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.max_epochs=2",
    "tracking.backend=none",
    "--optimization-metric",
    "val_auc",
]


def run_study(trials: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        experiments = workdir / "experiments"
        done = run(
            cli("hpo", "--num-trials", str(trials), *ARGS),
            workdir,
            1,
            watch=experiments,
            interval=0.2,
        )
        study_dir = next(experiments.glob("study_*"))
        events = read_jsonl(study_dir / "logs" / "hpo.jsonl")
        ends = [e for e in events if e["event"] == "trial_end"]
        checkpoints = list(experiments.glob("trial_*/checkpoints/*.pt"))
        return {
            "trials": trials,
            "final_bytes": done.final_bytes,
            "peak_bytes": done.peak_bytes,
            "checkpoint_bytes": sum(p.stat().st_size for p in checkpoints),
            "checkpoint_files": len(checkpoints),
            "states": {
                s: sum(e["state"] == s for e in ends) for s in ("COMPLETE", "PRUNED", "FAIL")
            },
            "rss_mb_first_last": [ends[0]["rss_mb"], ends[-1]["rss_mb"]],
            "wall_sec": round(done.wall_sec, 1),
        }


def run_trainer_search(trials: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        out = workdir / "hf-search"
        done = run(
            baseline(
                "search",
                "--model",
                "tiny-bert",
                "--trials",
                str(trials),
                "--out",
                str(out),
                "dataset.dataset_id=synthetic",
                "dataset.synthetic_num_posts=40",
                "dataset.max_length=64",
                "dataset.doc_stride=8",
                "trainer.max_epochs=2",
            ),
            workdir,
            1,
            watch=out,
            interval=0.2,
        )
        checkpoints = [p for p in out.rglob("*") if p.is_file() and "checkpoint-" in str(p)]
        return {
            "trials": trials,
            "final_bytes": done.final_bytes,
            "peak_bytes": done.peak_bytes,
            "checkpoint_bytes": sum(p.stat().st_size for p in checkpoints),
            "checkpoint_dirs": len({p.parent for p in out.glob("run-*/checkpoint-*/*")}),
            "wall_sec": round(done.wall_sec, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--no-trainer", action="store_true", help="only this project's studies")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for n in args.trials:
        rows.append(run_study(n))
        print(f"  ours, {n} trials: done", file=sys.stderr)
    trainer_rows = []
    if not args.no_trainer:
        for n in args.trials:
            trainer_rows.append(run_trainer_search(n))
            print(f"  Trainer + Optuna, {n} trials: done", file=sys.stderr)
    print("study footprint (tiny-bert, fp32 8.2 MB), this project:")
    print(
        f"{'trials':>6} {'final MB':>9} {'peak MB':>8} {'ckpt MB':>8} {'ckpt files':>10} {'RSS MB first/last':>18} {'wall s':>7}"
    )
    for row in rows:
        rss = "/".join(f"{v:.0f}" for v in row["rss_mb_first_last"])
        print(
            f"{row['trials']:>6} {row['final_bytes'] / 1e6:>9.2f} {row['peak_bytes'] / 1e6:>8.2f} "
            f"{row['checkpoint_bytes'] / 1e6:>8.2f} {row['checkpoint_files']:>10} {rss:>18} {row['wall_sec']:>7}"
        )
    if trainer_rows:
        print("Trainer + Optuna hyperparameter_search:")
        print(
            f"{'trials':>6} {'final MB':>9} {'peak MB':>8} {'ckpt MB':>8} {'ckpt dirs':>10} {'wall s':>7}"
        )
        for row in trainer_rows:
            print(
                f"{row['trials']:>6} {row['final_bytes'] / 1e6:>9.2f} {row['peak_bytes'] / 1e6:>8.2f} "
                f"{row['checkpoint_bytes'] / 1e6:>8.2f} {row['checkpoint_dirs']:>10} {row['wall_sec']:>7}"
            )
    first, last = rows[0], rows[-1]
    growth = last["final_bytes"] / first["final_bytes"] - 1
    print(
        f"ours: {last['trials']} trials vs {first['trials']}: final {100 * growth:+.1f}%, "
        f"peak {100 * (last['peak_bytes'] / first['peak_bytes'] - 1):+.1f}%"
    )
    if args.json:
        args.json.write_text(json.dumps({"ours": rows, "trainer": trainer_rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
