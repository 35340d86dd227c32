"""HPO overhead: the part of a trial's wall time that is not training steps or evaluation.

    python benchmarks/hpo_overhead.py [--full] [--json out.json]

Runs one `hpo` study of `minilm` trials (quick: 2 trials of 2 epochs on 40 posts; `--full`:
4 trials of 3 epochs on 80 posts) with the default tracking (a local MLflow store), and
splits each trial's wall time (hpo.jsonl `duration_sec`) into: training steps and
evaluation (train.jsonl `timing`), checkpoint I/O (`timing.checkpoint_sec`), set-up
(train.jsonl `setup`: run directory, MLflow run, tokenizer, data, model) and the rest
(Optuna, study-wide retention, MLflow calls at the end of the trial).

The tokenised-feature cache: the first trial of a study tokenises and writes the cache,
every later one reads it; the `data` set-up time of both is reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, cli, machine, read_jsonl, run, write_json


def settings(full: bool) -> dict[str, Any]:
    if full:
        return {"model": "minilm", "trials": 4, "epochs": 3, "posts": 80, "threads": 2}
    return {"model": "minilm", "trials": 2, "epochs": 2, "posts": 40, "threads": 2}


def measure(full: bool) -> dict[str, Any]:
    s = settings(full)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        experiments = workdir / "experiments"
        run(
            cli(
                "hpo",
                "--config",
                str(REPO / "configs" / "hpo_small.yaml"),
                "--study-name",
                "overhead",
                "--num-trials",
                str(s["trials"]),
                f"search_space.model_id.choices=[{s['model']}]",
                f"dataset.synthetic_num_posts={s['posts']}",
                f"trainer.max_epochs={s['epochs']}",
                f"trainer.num_threads={s['threads']}",
                "study.pruner.type=NopPruner",
                f"output.experiments_dir={experiments}",
            ),
            workdir,
            s["threads"],
        )
        study_dir = next(experiments.glob("study_*"))
        ends = [
            e for e in read_jsonl(study_dir / "logs" / "hpo.jsonl") if e["event"] == "trial_end"
        ]
        trials = []
        for end in ends:
            trial_dir = next(experiments.glob(f"trial_*-{end['number']:03d}"))
            events = read_jsonl(trial_dir / "logs" / "train.jsonl")
            setup = next(e for e in events if e["event"] == "setup")
            timing = [e["timing"] for e in events if e["event"] == "epoch_end"]
            train = sum(t["train_sec"] for t in timing)
            evaluation = sum(t["eval_sec"] for t in timing)
            checkpoint = sum(t["checkpoint_sec"] for t in timing)
            setup_sec = sum(setup["seconds"].values())
            wall = end["duration_sec"]
            overhead = wall - train - evaluation
            trials.append(
                {
                    "number": end["number"],
                    "wall_sec": wall,
                    "train_sec": train,
                    "eval_sec": evaluation,
                    "checkpoint_sec": checkpoint,
                    "setup_sec": setup_sec,
                    "setup_breakdown": setup["seconds"],
                    "other_sec": overhead - checkpoint - setup_sec,
                    "overhead_sec": overhead,
                    "overhead_pct": 100 * overhead / wall,
                    "feature_cache_hit": setup["feature_cache_hit"],
                    "data_sec": setup["seconds"]["data"],
                }
            )
    return {"settings": s, "machine": machine(), "trials": trials}


def show(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(
        f"HPO overhead: {s['trials']} {s['model']} trials, {s['epochs']} epochs, "
        f"{s['posts']} posts, {s['threads']} threads, MLflow local store"
    )
    print(
        f"{'trial':>5} {'wall s':>7} {'train s':>8} {'eval s':>7} {'setup s':>8} {'ckpt s':>7} "
        f"{'other s':>8} {'overhead':>9} {'cache':>6} {'data s':>7}"
    )
    for t in result["trials"]:
        print(
            f"{t['number']:>5} {t['wall_sec']:>7.1f} {t['train_sec']:>8.1f} {t['eval_sec']:>7.1f} "
            f"{t['setup_sec']:>8.2f} {t['checkpoint_sec']:>7.2f} {t['other_sec']:>8.2f} "
            f"{t['overhead_pct']:>8.1f}% {'hit' if t['feature_cache_hit'] else 'miss':>6} "
            f"{t['data_sec']:>7.3f}"
        )
    for t in result["trials"][:1]:
        print(
            "set-up of trial 0: "
            + ", ".join(f"{k} {v:.2f}s" for k, v in t["setup_breakdown"].items())
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.full)
    show(result)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
