"""Training throughput: this project's `train` against Hugging Face Trainer, side by side.

    python benchmarks/throughput.py [--full] [--json out.json]

Quick mode trains `tiny-bert`, `--full` trains `minilm`; both on the same synthetic posts,
split, windows, batch size, epochs and thread count. Four runners, alternated round by
round (the order rotates so that none always runs first):

- ours (grouped): `train` with its default `trainer.group_by_length: true`;
- ours (plain): `train` with `trainer.group_by_length=false` (random batches, like Trainer's
  default sampler);
- HF random / HF group_by_length: `benchmarks/hf_trainer_baseline.py throughput` with
  `train_sampling_strategy` random / group_by_length.

Only the training steps are timed (batch assembly, forward, backward, optimizer step):
this project's `timing.train_sec` in train.jsonl, Trainer's on_epoch_begin..on_epoch_end.
Samples/s counts windows; tokens/s counts real (non-padding) tokens. Achieved model FLOP/s
= 6 × parameters × tokens/s, against the dense fp32 matmul FLOP/s measured here with the
same thread count. The parameters counted are the non-embedding ones: an embedding lookup
costs no multiply-adds (tiny-bert is 93% embeddings, so counting them would claim more
than 100% of the machine); attention's own FLOPs are left out, as in the usual 6·N·D rule.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    baseline,
    cli,
    last_json_line,
    machine,
    matmul_flops,
    median,
    read_jsonl,
    run,
    synthetic_overrides,
    write_json,
)

RUNNERS = ("ours (grouped)", "ours (plain)", "HF random", "HF group_by_length")


def settings(full: bool) -> dict[str, Any]:
    if full:
        return {"model": "minilm", "posts": 40, "epochs": 2, "max_length": 128, "repeats": 3}
    return {"model": "tiny-bert", "posts": 80, "epochs": 2, "max_length": 128, "repeats": 5}


def ours(workdir: Path, s: dict[str, Any], threads: int, grouped: bool, tag: str) -> dict:
    trial = f"tp-{tag}"
    run(
        cli(
            "train",
            "--model",
            s["model"],
            "--dry-run",
            *synthetic_overrides(s),
            f"trainer.group_by_length={str(grouped).lower()}",
            f"trainer.num_threads={threads}",
            "tracking.backend=none",
            f"output.experiments_dir={workdir / 'experiments'}",
            f"output.trial_id={trial}",
        ),
        workdir,
        threads,
    )
    events = read_jsonl(workdir / "experiments" / f"trial_{trial}" / "logs" / "train.jsonl")
    epochs = [e["timing"] for e in events if e["event"] == "epoch_end"]
    start = next(e for e in events if e["event"] == "run_start")
    return {
        "train_sec": sum(t["train_sec"] for t in epochs),
        "samples": sum(t["samples"] for t in epochs),
        "tokens": sum(t["tokens"] for t in epochs),
        "padded_tokens": sum(t["padded_tokens"] for t in epochs),
        "parameters": start["parameters"],
    }


def hugging_face(workdir: Path, s: dict[str, Any], threads: int, sampling: str) -> dict:
    done = run(
        baseline(
            "throughput",
            "--model",
            s["model"],
            "--sampling",
            sampling,
            "--threads",
            str(threads),
            "--out",
            str(workdir / f"hf-{sampling}"),
            *synthetic_overrides(s),
        ),
        workdir,
        threads,
    )
    result = last_json_line(done.stdout)
    epochs = len(result["epoch_train_sec"])
    return {
        "train_sec": sum(result["epoch_train_sec"]),
        "samples": result["samples"] * epochs,
        "tokens": result["tokens"] * epochs,
        "padded_tokens": result["padded_tokens"],
    }


def non_embedding_parameters(model_id: str) -> int:
    from dataaug_multi_both.model.encoder import load_encoder, resolve_model_id

    encoder = load_encoder(resolve_model_id(model_id), "main")
    return sum(p.numel() for n, p in encoder.named_parameters() if "embeddings" not in n)


def measure(full: bool, threads: int) -> dict[str, Any]:
    s = settings(full)
    samples: dict[str, list[dict]] = {name: [] for name in RUNNERS}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for round_ in range(s["repeats"]):
            order = RUNNERS[round_ % 4 :] + RUNNERS[: round_ % 4]
            for name in order:
                tag = f"{round_}-{RUNNERS.index(name)}"
                if name == "ours (grouped)":
                    samples[name].append(ours(workdir, s, threads, True, tag))
                elif name == "ours (plain)":
                    samples[name].append(ours(workdir, s, threads, False, tag))
                else:
                    sampling = "random" if name == "HF random" else "group_by_length"
                    samples[name].append(hugging_face(workdir, s, threads, sampling))
                print(f"  round {round_ + 1}/{s['repeats']}: {name} done", file=sys.stderr)
    parameters = samples["ours (grouped)"][0]["parameters"]
    compute_parameters = non_embedding_parameters(s["model"])
    peak = matmul_flops(threads)
    rows = {}
    for name, runs in samples.items():
        sps = median([r["samples"] / r["train_sec"] for r in runs])
        tps = median([r["tokens"] / r["train_sec"] for r in runs])
        rows[name] = {
            "samples_per_sec": sps,
            "tokens_per_sec": tps,
            "runs": len(runs),
            "model_flops_per_sec": 6 * compute_parameters * tps,
            "efficiency_pct": 100 * 6 * compute_parameters * tps / peak,
        }
        if "padded_tokens" in runs[0]:
            rows[name]["padding_pct"] = 100 * (
                1 - sum(r["tokens"] for r in runs) / sum(r["padded_tokens"] for r in runs)
            )
    ratios = {
        "grouped_vs_hf_group_by_length": rows["ours (grouped)"]["samples_per_sec"]
        / rows["HF group_by_length"]["samples_per_sec"],
        "grouped_vs_hf_random": rows["ours (grouped)"]["samples_per_sec"]
        / rows["HF random"]["samples_per_sec"],
        "plain_vs_hf_random": rows["ours (plain)"]["samples_per_sec"]
        / rows["HF random"]["samples_per_sec"],
    }
    return {
        "settings": {**s, "threads": threads, "batch_size": 16},
        "machine": machine(),
        "parameters": parameters,
        "non_embedding_parameters": compute_parameters,
        "matmul_flops_per_sec": peak,
        "rows": rows,
        "ratios": ratios,
    }


def show(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(
        f"training throughput: {s['model']} ({result['parameters'] / 1e6:.1f}M parameters, "
        f"{result['non_embedding_parameters'] / 1e6:.2f}M outside the embeddings), "
        f"{s['posts']} posts, max_length {s['max_length']}, batch {s['batch_size']}, "
        f"{s['epochs']} epochs, {s['threads']} threads, median of {s['repeats']} runs"
    )
    print(f"{'runner':<20} {'samples/s':>10} {'tokens/s':>10} {'padding':>8} {'MFU':>7}")
    for name, row in result["rows"].items():
        padding = f"{row['padding_pct']:.1f}%" if "padding_pct" in row else "-"
        print(
            f"{name:<20} {row['samples_per_sec']:>10.1f} {row['tokens_per_sec']:>10.0f} "
            f"{padding:>8} {row['efficiency_pct']:>6.1f}%"
        )
    print(f"matmul peak here: {result['matmul_flops_per_sec'] / 1e9:.1f} GFLOP/s (fp32)")
    for name, value in result["ratios"].items():
        print(f"  {name}: {value:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="minilm instead of tiny-bert")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.full, args.threads)
    show(result)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
