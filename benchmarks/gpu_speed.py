"""Training speed on a GPU: this project's loop against Hugging Face Trainer, in one run.

    python benchmarks/gpu_speed.py --out DIR                 # on a GPU box (make bench-gpu)
    python benchmarks/gpu_speed.py --device cpu --out DIR    # dry mode: small shapes, minutes

Two encoders: MiniLM-L6 (the embedded weights) and a BERT-base-shaped encoder (12 layers,
768 wide, random weights: speed does not depend on them), at max_length 256 in bf16
autocast, batch 32, on the same synthetic windows. For each, three runs of two epochs:

- ours: `train` with checkpoints as configured by default (the epoch-end save is timed:
  `timing.checkpoint_sec`, the part that blocks the loop);
- Trainer (throughput): `benchmarks/hf_trainer_baseline.py throughput`, no saving;
- Trainer (checkpoint): the same with `save_strategy="epoch"`, for the time its saves block.

The second epoch is the one reported (the first pays for CUDA kernels' warm-up). Samples/s
counts windows, tokens/s real (non-padding) tokens. Model FLOP/s = 6 x non-embedding
parameters x tokens/s (the usual 6ND rule, attention left out), as a fraction of the card's
bf16 dense peak (H100 SXM and H200: 989 TFLOP/s; other cards: not reported). In `--device
cpu` dry mode the shapes are small (a 2-layer BERT-base-wide encoder, 40 posts, 64 tokens)
and the peak is the dense fp32 matmul rate measured here: the numbers only prove the script.
Writes `gpu_speed.json` (with the card's name) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, cli, last_json_line, machine, matmul_flops, read_jsonl

# bf16 dense tensor-core peak, FLOP/s (NVIDIA's data sheets, without sparsity)
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12}


def settings(device: str) -> dict[str, Any]:
    if device == "cpu":  # dry mode: proves the script, in minutes
        return {"posts": 40, "max_length": 64, "stride": 16, "batch": 16, "layers": 2, "epochs": 2}
    return {"posts": 1500, "max_length": 256, "stride": 64, "batch": 32, "layers": 12, "epochs": 2}


def data_overrides(s: dict[str, Any], device: str) -> list[str]:
    return [
        "dataset.dataset_id=synthetic",
        f"dataset.synthetic_num_posts={s['posts']}",
        f"dataset.max_length={s['max_length']}",
        f"dataset.doc_stride={s['stride']}",
        f"trainer.max_epochs={s['epochs']}",
        f"trainer.batch_size={s['batch']}",
        "trainer.mixed_precision=true",
        "trainer.precision=bf16",
        f"trainer.device={device}",
    ]


def bert_base_shaped(directory: Path, layers: int) -> Path:
    """A BERT-base-shaped encoder with random weights and MiniLM's (BERT uncased) vocabulary,
    saved as a local model directory."""
    import torch
    from transformers import BertConfig, BertModel

    from dataaug_multi_both.model.encoder import load_tokenizer, resolve_model_id

    tokenizer = load_tokenizer(resolve_model_id("minilm"), None)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), num_hidden_layers=layers)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def non_embedding_parameters(model_id: str) -> int:
    from dataaug_multi_both.model.encoder import load_encoder, resolve_model_id

    encoder = load_encoder(resolve_model_id(model_id), None)
    return sum(p.numel() for n, p in encoder.named_parameters() if "embeddings" not in n)


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:5])} ... failed:\n{done.stderr[-3000:]}")
    return done


def ours(workdir: Path, model: str, overrides: list[str], tag: str) -> dict[str, Any]:
    run(
        cli(
            "train",
            "--model",
            model,
            *overrides,
            "tracking.backend=none",
            "trainer.logging_steps=0",
            f"output.trial_id=gpu_{tag}",
        ),
        workdir,
    )
    log = workdir / "experiments" / f"trial_gpu_{tag}" / "logs" / "train.jsonl"
    last = [r for r in read_jsonl(log) if r["event"] == "epoch_end"][-1]["timing"]
    return {
        "train_sec": last["train_sec"],
        "samples": last["samples"],
        "tokens": last["tokens"],
        "checkpoint_sec": last["checkpoint_sec"],
    }


def trainer(workdir: Path, model: str, overrides: list[str], mode: str) -> dict[str, Any]:
    done = run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "hf_trainer_baseline.py"),
            mode,
            "--model",
            model,
            "--out",
            str(workdir / f"hf_{mode}"),
            *overrides,
        ],
        workdir,
    )
    result = last_json_line(done.stdout)
    return {
        "train_sec": result["epoch_train_sec"][-1],
        "samples": result["samples"],
        "tokens": result["tokens"],
        "save_sec": (result.get("save_sec") or [None])[-1],
    }


def rates(run_: dict[str, Any], parameters: int, peak: float | None) -> dict[str, Any]:
    seconds = max(run_["train_sec"], 1e-9)
    tokens_per_sec = run_["tokens"] / seconds
    flops = 6 * parameters * tokens_per_sec
    return {
        **run_,
        "samples_per_sec": round(run_["samples"] / seconds, 1),
        "tokens_per_sec": round(tokens_per_sec, 1),
        "model_flops_per_sec": flops,
        "fraction_of_peak": None if not peak else round(flops / peak, 4),
    }


def card_and_peak(device: str) -> tuple[str, float | None, str]:
    if device == "cpu":
        return "cpu", matmul_flops(os.cpu_count() or 1), "measured fp32 matmul (dry mode)"
    import torch

    name = torch.cuda.get_device_name(0)
    peak = next((p for key, p in PEAK_BF16.items() if key in name), None)
    return name, peak, "bf16 dense, data sheet"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    s = settings(args.device)
    card, peak, peak_kind = card_and_peak(args.device)
    overrides = data_overrides(s, args.device)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        models = {
            "minilm": "minilm",
            "bert-base-shaped": str(bert_base_shaped(workdir / "bert_base", s["layers"])),
        }
        for name, model in models.items():
            parameters = non_embedding_parameters(model)
            runs = {
                "ours": ours(workdir, model, overrides, name.replace("-", "_")),
                "trainer": trainer(workdir, model, overrides, "throughput"),
                "trainer_checkpoint": trainer(workdir, model, overrides, "checkpoint"),
            }
            measured = {k: rates(v, parameters, peak) for k, v in runs.items()}
            results[name] = {
                "non_embedding_parameters": parameters,
                **measured,
                "ours_vs_trainer_samples_per_sec": round(
                    measured["ours"]["samples_per_sec"] / measured["trainer"]["samples_per_sec"], 3
                ),
            }
            print(
                f"{name}: ours {measured['ours']['samples_per_sec']} samples/s, Trainer "
                f"{measured['trainer']['samples_per_sec']} "
                f"({results[name]['ours_vs_trainer_samples_per_sec']}x); checkpoint blocks "
                f"ours {runs['ours']['checkpoint_sec']:.3f} s, Trainer "
                f"{runs['trainer_checkpoint']['save_sec']} s",
                file=sys.stderr,
            )
    payload = {
        "benchmark": "gpu_speed",
        "device": args.device,
        "card": card,
        "peak_flops_per_sec": peak,
        "peak_kind": peak_kind,
        "settings": s,
        "machine": machine(),
        "models": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_speed.json").write_text(json.dumps(payload, indent=1))
    print(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
