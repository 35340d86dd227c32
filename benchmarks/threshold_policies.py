"""Which decision-threshold policy should be the default? Train models, then score each
one's test split with thresholds chosen on its validation split by every policy.

    cd benchmarks && ../.venv/bin/python threshold_policies.py --json ../docs/measurements/threshold_policies.json

For each (model, seed): one `train` run (the demo's data: 240 synthetic posts split
144/48/48), then, in this process, the best checkpoint's predictions on validation and test
are computed once and every policy is applied: fixed 0.5, `tuned`, `tuned_per_criterion`
(the thresholds come from validation; the test split only scores them). Prints test
macro-F1 (with its 95% bootstrap interval) and micro-F1 per policy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, cli, machine, run, write_json

SETTINGS = {
    "minilm": ["trainer.learning_rate=1.5e-4", "trainer.max_epochs=3"],
    "tiny-bert": ["trainer.learning_rate=1e-3", "trainer.max_epochs=6"],
}
DATA = [
    "dataset.dataset_id=synthetic",
    "dataset.synthetic_num_posts=240",
    "dataset.split_ratios=[0.6,0.2,0.2]",
    "dataset.max_length=128",
    "dataset.doc_stride=32",
    "tracking.backend=none",
]
POLICIES: list[float | str] = [0.5, "tuned", "tuned_per_criterion"]


def split_arrays_of(trial_dir: Path, split: str) -> Any:
    import torch
    import yaml

    from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
    from dataaug_multi_both.checkpointing.store import load_checkpoint
    from dataaug_multi_both.config.schema import TrainConfig
    from dataaug_multi_both.data.pipeline import prepare_data
    from dataaug_multi_both.data.splits import SplitManifest
    from dataaug_multi_both.model.encoder import load_tokenizer, resolve_model_id
    from dataaug_multi_both.training.evaluation import build_model
    from dataaug_multi_both.training.inference import predict
    from dataaug_multi_both.training.scoring import split_arrays

    config = TrainConfig.from_dict(yaml.safe_load((trial_dir / "config.yaml").read_text()))
    manifest = CheckpointManifest.read(trial_dir / "checkpoints")
    assert manifest is not None
    best = next(r for r in manifest.retained() if r.is_best)
    payload = load_checkpoint(trial_dir / "checkpoints" / best.file)
    tokenizer = load_tokenizer(resolve_model_id(config.model.model_id), "main")
    data = prepare_data(
        config.dataset,
        9,
        tokenizer,
        trial_dir.parent / ".cache",
        SplitManifest.read(trial_dir / "split_manifest.json"),
    )
    model = build_model(payload, torch.device("cpu"))
    predictions = predict(
        model, data.builder, data.tables[split], data.pairs, torch.device("cpu"), 64, 96
    )
    return split_arrays(predictions, data.pairs)


def score_policies(trial_dir: Path) -> dict[str, Any]:
    from dataaug_multi_both.training.metrics import split_metrics
    from dataaug_multi_both.training.thresholds import choose_threshold
    from dataaug_multi_both.training.uncertainty import bootstrap_intervals

    validation, test = split_arrays_of(trial_dir, "validation"), split_arrays_of(trial_dir, "test")
    rows = {}
    for policy in POLICIES:
        chosen = choose_threshold(policy, validation.labels, validation.probabilities)
        metrics = split_metrics(test, chosen.values(), "test")
        interval = bootstrap_intervals(test, chosen.values(), ["criteria_matcher/f1"])
        ci = interval["metrics"]["criteria_matcher/f1"]
        rows[str(policy)] = {
            "thresholds": [round(v, 4) for v in chosen.per_criterion],
            "macro_f1": metrics["test/criteria_matcher/f1"],
            "macro_f1_ci": [ci["low"], ci["high"]],
            "micro_f1": metrics["test/criteria_matcher/micro_f1"],
            "validation_macro_f1": split_metrics(validation, chosen.values(), "v")[
                "v/criteria_matcher/f1"
            ],
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny-bert", "minilm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--minilm-seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for model in args.models:
            for seed in args.minilm_seeds if model == "minilm" else args.seeds:
                trial = f"{model}-{seed}"
                done = run(
                    cli(
                        "train",
                        "--model",
                        model,
                        "--seed",
                        str(seed),
                        *DATA,
                        *SETTINGS[model],
                        f"output.trial_id={trial}",
                    ),
                    cwd=work,
                    threads=2,
                )
                rows = score_policies(work / "experiments" / f"trial_{trial}")
                results.append(
                    {"model": model, "seed": seed, "train_sec": done.wall_sec, "policies": rows}
                )
                print(f"{model} seed {seed} ({done.wall_sec:.0f}s training)")
                for policy, row in rows.items():
                    low, high = row["macro_f1_ci"]
                    print(
                        f"  {policy:>20}: test macro-F1 {row['macro_f1']:.3f} [{low:.3f}, {high:.3f}]"
                        f"  micro-F1 {row['micro_f1']:.3f}  (validation macro-F1 {row['validation_macro_f1']:.3f})"
                    )
    summary = {
        str(p): {
            "mean_test_macro_f1": float(
                np.mean([r["policies"][str(p)]["macro_f1"] for r in results])
            ),
            "mean_test_micro_f1": float(
                np.mean([r["policies"][str(p)]["micro_f1"] for r in results])
            ),
        }
        for p in POLICIES
    }
    print(json.dumps(summary, indent=1))
    write_json(
        args.json,
        {
            "machine": machine(),
            "data": DATA,
            "settings": SETTINGS,
            "runs": results,
            "summary": summary,
        },
    )


if __name__ == "__main__":
    main()
