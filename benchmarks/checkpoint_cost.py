"""Checkpoint cost per trial: bytes at the end and at peak, save latency, time lost to saving.

    python benchmarks/checkpoint_cost.py [--full] [--json out.json]

Trains the same model on the same data (quick: `tiny-bert`, `--full`: `minilm`), evaluating
and checkpointing every epoch, in three set-ups, sampling the run directory's size every
20 ms:

- ours, standalone `train` with the default retention (keep the latest resume checkpoint,
  the best as weights-only);
- ours, the same run as a one-trial `hpo` study (what a trial inside the study's top K keeps
  at the end), and with `retention.best_dtype=bf16`;
- Hugging Face Trainer with `save_strategy="epoch", save_total_limit=1,
  load_best_model_at_end=True` (`benchmarks/hf_trainer_baseline.py checkpoint`).

Sizes are multiples of the fp32 model (4 bytes × parameters). Time lost to saving = the
time the training loop is blocked per save (ours: `timing.checkpoint_sec` in train.jsonl,
Trainer: its `_save_checkpoint`), as a fraction of the training-step time; the disk's raw
sequential bandwidth is measured in the same run by writing + fsyncing a file of the size
of one resume checkpoint.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    baseline,
    cli,
    disk_write_bandwidth,
    last_json_line,
    machine,
    median,
    read_jsonl,
    run,
    synthetic_overrides,
    write_json,
)


def settings(full: bool) -> dict[str, Any]:
    model = "minilm" if full else "tiny-bert"
    return {"model": model, "posts": 80, "epochs": 3, "max_length": 128, "threads": 2}


def overrides(s: dict[str, Any]) -> list[str]:
    return [*synthetic_overrides(s), f"trainer.num_threads={s['threads']}"]


def ours_train(workdir: Path, s: dict[str, Any]) -> dict[str, Any]:
    trial = workdir / "experiments" / "trial_ckpt"
    done = run(
        cli(
            "train",
            "--model",
            s["model"],
            *overrides(s),
            "tracking.backend=none",
            f"output.experiments_dir={workdir / 'experiments'}",
            "output.trial_id=ckpt",
        ),
        workdir,
        s["threads"],
        watch=trial / "checkpoints",
        interval=0.02,
    )
    events = read_jsonl(trial / "logs" / "train.jsonl")
    timing = [e["timing"] for e in events if e["event"] == "epoch_end"]
    saves = [e for e in events if e["event"] == "checkpoint" and e["action"] == "saved"]
    parameters = next(e for e in events if e["event"] == "run_start")["parameters"]
    return {
        "parameters": parameters,
        "end_bytes": done.final_bytes,
        "peak_bytes": done.peak_bytes,
        "save_sec": [t["checkpoint_sec"] for t in timing],
        "train_sec": [t["train_sec"] for t in timing],
        "resume_checkpoint_bytes": max(e["bytes"] for e in saves if e["kind"] == "resume"),
    }


def ours_study(workdir: Path, s: dict[str, Any], best_dtype: str) -> dict[str, Any]:
    experiments = workdir / f"study-{best_dtype}"
    done = run(
        cli(
            "hpo",
            "--config",
            str(REPO / "configs" / "hpo.yaml"),
            "--num-trials",
            "1",
            "--study-name",
            f"ckpt-{best_dtype}",
            *overrides(s),
            f"search_space.model_id.choices=[{s['model']}]",
            f"retention.best_dtype={best_dtype}",
            "tracking.backend=none",
            f"output.experiments_dir={experiments}",
        ),
        workdir,
        s["threads"],
        watch=experiments,
        interval=0.02,
    )
    checkpoints = sum(p.stat().st_size for p in experiments.glob("trial_*/checkpoints/*.pt"))
    return {"end_bytes": checkpoints, "peak_bytes": done.peak_bytes}


def hugging_face(workdir: Path, s: dict[str, Any]) -> dict[str, Any]:
    out = workdir / "hf-checkpoint"
    done = run(
        baseline(
            "checkpoint",
            "--model",
            s["model"],
            "--threads",
            str(s["threads"]),
            "--out",
            str(out),
            *overrides(s),
        ),
        workdir,
        s["threads"],
        watch=out,
        interval=0.02,
    )
    result = last_json_line(done.stdout)
    return {
        "end_bytes": done.final_bytes,
        "peak_bytes": done.peak_bytes,
        "save_sec": result["save_sec"],
        "train_sec": result["epoch_train_sec"],
    }


def measure(full: bool) -> dict[str, Any]:
    s = settings(full)
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:  # the disk the experiments live on
        workdir = Path(tmp)
        train = ours_train(workdir, s)
        study = ours_study(workdir, s, "float32")
        study_bf16 = ours_study(workdir, s, "bf16")
        hf = hugging_face(workdir, s)
        bandwidth = median(
            [disk_write_bandwidth(workdir, train["resume_checkpoint_bytes"]) for _ in range(3)]
        )
    model_bytes = 4 * train["parameters"]

    def times(value: float) -> float:
        return value / model_bytes

    def lost(r: dict[str, Any]) -> float:
        return 100 * sum(r["save_sec"]) / sum(r["train_sec"])

    rows = {
        "ours: train (default retention)": {
            "end_x": times(train["end_bytes"]),
            "peak_x": times(train["peak_bytes"]),
            "save_sec_median": median(train["save_sec"]),
            "time_lost_pct": lost(train),
        },
        "ours: trial in a study (top K)": {
            "end_x": times(study["end_bytes"]),
            "peak_x": times(study["peak_bytes"]),
        },
        "ours: trial in a study, best_dtype bf16": {
            "end_x": times(study_bf16["end_bytes"]),
            "peak_x": times(study_bf16["peak_bytes"]),
        },
        "HF Trainer (save_total_limit=1, best at end)": {
            "end_x": times(hf["end_bytes"]),
            "peak_x": times(hf["peak_bytes"]),
            "save_sec_median": median(hf["save_sec"]),
            "time_lost_pct": lost(hf),
        },
    }
    return {
        "settings": s,
        "machine": machine(),
        "parameters": train["parameters"],
        "model_fp32_bytes": model_bytes,
        "resume_checkpoint_bytes": train["resume_checkpoint_bytes"],
        "disk_write_bytes_per_sec": bandwidth,
        "bandwidth_bound_save_sec": train["resume_checkpoint_bytes"] / bandwidth,
        "raw": {"train": train, "study": study, "study_bf16": study_bf16, "hf": hf},
        "rows": rows,
    }


def show(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(
        f"checkpoint cost: {s['model']} ({result['parameters'] / 1e6:.1f}M parameters, fp32 "
        f"{result['model_fp32_bytes'] / 1e6:.1f} MB), {s['epochs']} epochs, save every epoch"
    )
    print(f"{'set-up':<46} {'end':>6} {'peak':>6} {'save s':>7} {'lost':>6}")
    for name, row in result["rows"].items():
        save = f"{row['save_sec_median']:.3f}" if "save_sec_median" in row else "-"
        lost = f"{row['time_lost_pct']:.1f}%" if "time_lost_pct" in row else "-"
        print(f"{name:<46} {row['end_x']:>5.2f}x {row['peak_x']:>5.2f}x {save:>7} {lost:>6}")
    print(
        f"disk: {result['disk_write_bytes_per_sec'] / 1e6:.0f} MB/s write+fsync; one resume "
        f"checkpoint ({result['resume_checkpoint_bytes'] / 1e6:.1f} MB) at that bandwidth: "
        f"{result['bandwidth_bound_save_sec']:.3f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="minilm instead of tiny-bert")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.full)
    show(result)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
