"""CUDA smoke run: train + resume with mixed precision (bf16 and fp16), and throughput.

Run on a machine with a GPU:  python benchmarks/cuda_smoke.py --out DIR
For each precision it trains tiny-bert on the synthetic data for 3 epochs straight, then
again stopped by SIGTERM after epoch 1 and resumed, and compares the per-epoch validation
metrics and final weights of the two. Then it measures training throughput (windows/s,
tokens/s) of a MiniLM-L6-shaped encoder (random weights: speed does not depend on them).
Prints a table and writes `cuda_smoke.json` into --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.errors import StorageError
from dataaug_multi_both.layout import TrialPaths

COMMON = ["--dataset", "synthetic", "tracking.backend=none", "dataset.synthetic_num_posts=120"]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dataaug_multi_both.cli.train", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def epochs(trial: Path) -> dict[int, dict[str, float]]:
    out = {}
    for line in (trial / "logs" / "train.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "epoch_end":
            out[record["epoch"]] = {
                k: v for k, v in record["metrics"].items() if not k.startswith("system/")
            }
    return out


def stop_after_epoch_1(args: list[str], cwd: Path, trial: Path) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataaug_multi_both.cli.train", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoints = TrialPaths(trial).checkpoints
    while proc.poll() is None:
        with contextlib.suppress(StorageError):  # a manifest being written: look again
            manifest = CheckpointManifest.read(checkpoints)
            if manifest is not None and manifest.records:
                break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=300)
    return proc.returncode


def precision_check(precision: str, work: Path) -> dict[str, Any]:
    import torch

    base = ["--model", "tiny-bert", *COMMON, "--max-epochs", "3", f"trainer.precision={precision}"]
    straight = run([*base, f"output.trial_id=straight_{precision}"], work)
    assert straight.returncode == 0, straight.stderr[-2000:]
    trial = work / "experiments" / f"trial_resumed_{precision}"
    code = stop_after_epoch_1([*base, f"output.trial_id=resumed_{precision}"], work, trial)
    latest = sorted((trial / "checkpoints").glob("epoch_*.pt"))[-1]
    resumed = run(["--resume-from", str(latest)], work)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = epochs(work / "experiments" / f"trial_straight_{precision}")
    b = epochs(trial)
    diffs = [
        abs(a[e][k] - b[e][k])
        for e in a
        for k in a[e]
        if a[e][k] is not None and b[e].get(k) is not None
    ]
    wa = torch.load(
        work / "experiments" / f"trial_straight_{precision}" / "checkpoints" / "epoch_003.pt",
        weights_only=True,
    )["model"]
    wb = torch.load(trial / "checkpoints" / "epoch_003.pt", weights_only=True)["model"]
    weight_diff = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    scaler = torch.load(trial / "checkpoints" / "epoch_003.pt", weights_only=True)["scaler"]
    return {
        "precision": precision,
        "sigterm_exit_code": code,
        "stopped_at_epoch": int(latest.stem.split("_")[1]),
        "epochs": sorted(b),
        "max_metric_diff": max(diffs) if diffs else 0.0,
        "max_weight_diff": weight_diff,
        "grad_scaler_state": {
            k: float(v) if isinstance(v, float | int) else str(v) for k, v in scaler.items()
        },
        "val_f1": [round(b[e]["val/criteria_matcher/f1"], 4) for e in sorted(b)],
    }


def throughput(work: Path, precision: str) -> dict[str, Any]:  # precision "fp32": no autocast
    """Windows/s and tokens/s of a MiniLM-L6-shaped encoder (random weights)."""
    from transformers import AutoConfig, AutoTokenizer, BertModel

    from dataaug_multi_both.model.encoder import minilm_path

    model_dir = work / "minilm-shaped"
    if not model_dir.is_dir():
        config = AutoConfig.from_pretrained(minilm_path())
        BertModel(config, add_pooling_layer=False).save_pretrained(model_dir)
        AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(model_dir)
    trial_id = f"speed_{precision}"
    result = run(
        [
            "--model",
            str(model_dir),
            *COMMON,
            "--max-epochs",
            "2",
            "--dry-run",
            *(
                ["trainer.mixed_precision=false"]
                if precision == "fp32"
                else [f"trainer.precision={precision}"]
            ),
            "trainer.batch_size=32",
            "dataset.synthetic_num_posts=400",
            f"output.trial_id={trial_id}",
        ],
        work,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    log = [
        json.loads(x)
        for x in (work / "experiments" / f"trial_{trial_id}" / "logs" / "train.jsonl")
        .read_text()
        .splitlines()
    ]
    data = next(r for r in log if r["event"] == "data")
    windows = data["splits"]["train"]["windows"]
    second = [r for r in log if r["event"] == "epoch_end"][-1]["metrics"]
    seconds = second["system/epoch_duration_sec"]  # epoch 2: warm caches, includes validation
    return {
        "precision": precision,
        "train_windows": windows,
        "epoch_sec": round(seconds, 2),
        "windows_per_sec": round(windows / seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--work", default="/tmp/cuda_smoke")
    args = parser.parse_args()
    import torch

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
    }
    report["resume"] = [precision_check(p, work) for p in ("bf16", "fp16")]
    report["throughput"] = [throughput(work, p) for p in ("fp32", "bf16", "fp16")]
    print(json.dumps(report, indent=1))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "cuda_smoke.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
