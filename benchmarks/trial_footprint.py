"""Bytes on disk of one trial's checkpoints, as a multiple of the fp32 model size.

    python benchmarks/trial_footprint.py --trial-dir experiments/trial_X [--json out.json]

Compares what the trial keeps with a full-state-per-checkpoint scheme that keeps the best
and the last checkpoint, each with model + optimizer + scheduler (what a Trainer-style
`save_total_limit=1, load_best_model_at_end=True` run holds while training).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.policy import RESUME
from dataaug_multi_both.layout import TrialPaths


def fp32_model_bytes(checkpoint: Path) -> int:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["model"]
    return sum(t.numel() * 4 for t in state.values() if torch.is_floating_point(t))


def measure(trial_dir: Path) -> dict[str, float | int | str]:
    directory = TrialPaths(trial_dir).checkpoints
    manifest = CheckpointManifest.read(directory)
    assert manifest is not None, f"no manifest in {directory}"
    retained = manifest.retained()
    on_disk = sum((directory / r.file).stat().st_size for r in retained)
    resume = [r for r in manifest.records if r.kind == RESUME]
    full_state = max(r.size_bytes for r in resume) if resume else 0
    model = fp32_model_bytes(directory / retained[0].file)
    return {
        "trial": trial_dir.name,
        "fp32_model_mb": round(model / 1e6, 1),
        "retained_files": ", ".join(f"{r.file} ({r.kind})" for r in retained),
        "bytes_on_disk": on_disk,
        "multiple_of_model": round(on_disk / model, 2),
        "full_state_checkpoint_mb": round(full_state / 1e6, 1),
        "full_state_best_and_last_multiple": round(2 * full_state / model, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial-dir", required=True, type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.trial_dir)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
