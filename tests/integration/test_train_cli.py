"""`train` end to end as a subprocess, on tiny-bert and the synthetic data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from dataaug_multi_both.metric_names import TRAIN_METRIC_NAMES, VAL_METRIC_NAMES
from tests.integration.conftest import SMALL_DATA, TINY, only_trial_dir, read_jsonl, run_cli

pytestmark = pytest.mark.integration


def test_tiny_bert_trains_loss_falls_and_every_metric_is_logged(workdir: Path) -> None:
    result = run_cli(
        "train",
        *TINY,
        "dataset.synthetic_num_posts=80",  # overrides may come before, between and after flags
        "--max-epochs",
        "3",
        "trainer.learning_rate=1e-3",
        "--dry-run",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    trial = only_trial_dir(workdir / "experiments")
    assert (trial / "config.yaml").is_file() and (trial / "split_manifest.json").is_file()
    assert yaml.safe_load((trial / "config.yaml").read_text())["model"]["model_id"] == "tiny-bert"
    records = read_jsonl(trial / "logs" / "train.jsonl")
    epochs = [r for r in records if r["event"] == "epoch_end"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    for record in epochs:
        assert {"timestamp", "event", "epoch", "step", "metrics"} <= set(record)
        names = set(record["metrics"])
        assert set(TRAIN_METRIC_NAMES) <= names and set(VAL_METRIC_NAMES) <= names
        assert {"system/epoch_duration_sec", "system/disk_free_gb"} <= names
        assert {
            f"val/criteria_matcher/f1_{s}" for s in ("SLEEP_ISSUES", "SUICIDAL_THOUGHTS")
        } <= names
    losses = [
        r["metrics"]["train/criteria_matcher/loss"] + r["metrics"]["train/evidence_binder/loss"]
        for r in epochs
    ]
    assert losses[-1] < losses[0]
    data = next(r for r in records if r["event"] == "data")
    assert data["alignment"]["exact"] > 0 and data["splits"]["train"]["posts"] > 0
    assert "val/criteria_matcher" in result.stdout and "ETA" in result.stdout
    assert not (trial / "checkpoints").exists()  # --dry-run saves nothing
    # the default threshold policy is tuned on validation at every evaluation
    for record in epochs:
        chosen = record["decision_threshold"]
        assert chosen["policy"] == "tuned" and chosen["source"] == "validation"
        assert record["metrics"]["val/criteria_matcher/threshold"] == chosen["value"]


def test_the_split_does_not_move_with_the_training_seed(workdir: Path) -> None:
    args = [*TINY, "--max-epochs", "1", "--dry-run", *SMALL_DATA, "tracking.backend=none"]
    one = run_cli("train", *args, "--seed", "1", "output.trial_id=s1", cwd=workdir)
    two = run_cli("train", *args, "--seed", "2", "output.trial_id=s2", cwd=workdir)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    manifests = [
        json.loads((workdir / f"experiments/trial_{t}/split_manifest.json").read_text())
        for t in ("s1", "s2")
    ]
    assert manifests[0]["post_ids"] == manifests[1]["post_ids"]
    assert manifests[0]["seed"] == 42  # dataset.split_seed
    metrics = [
        next(
            r
            for r in read_jsonl(workdir / f"experiments/trial_{t}/logs/train.jsonl")
            if r["event"] == "epoch_end"
        )["metrics"]
        for t in ("s1", "s2")
    ]  # the seed still changes the weights and the data order
    assert metrics[0]["train/criteria_matcher/loss"] != metrics[1]["train/criteria_matcher/loss"]
    other = run_cli(
        "train", *args, "--seed", "1", "dataset.split_seed=7", "output.trial_id=s3", cwd=workdir
    )
    assert other.returncode == 0, other.stderr
    moved = json.loads((workdir / "experiments/trial_s3/split_manifest.json").read_text())
    assert moved["post_ids"] != manifests[0]["post_ids"] and moved["seed"] == 7


def test_same_seed_same_metrics_and_feature_cache_reused(workdir: Path) -> None:
    args = [*TINY, "--max-epochs", "1", "--dry-run", *SMALL_DATA]
    first = run_cli("train", *args, "output.trial_id=a", cwd=workdir)
    second = run_cli("train", *args, "output.trial_id=b", cwd=workdir)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a = read_jsonl(workdir / "experiments/trial_a/logs/train.jsonl")
    b = read_jsonl(workdir / "experiments/trial_b/logs/train.jsonl")
    metrics_a = next(r for r in a if r["event"] == "epoch_end")["metrics"]
    metrics_b = next(r for r in b if r["event"] == "epoch_end")["metrics"]
    for name, value in metrics_a.items():
        if not name.startswith("system/") and value is not None and not math.isnan(value):
            assert metrics_b[name] == value, name
    assert next(r for r in b if r["event"] == "data")["feature_cache_hit"] is True
    split_a = (workdir / "experiments/trial_a/split_manifest.json").read_text()
    assert split_a == (workdir / "experiments/trial_b/split_manifest.json").read_text()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--optimization-metric", "val_bogus"], 2, "unknown optimization metric"),
        (["trainer.batch_size=0"], 2, "trainer.batch_size"),
        (["--config", "missing.yaml"], 2, "config file not found"),
        (["--resume-from", "nope.pt"], 2, "no such checkpoint"),
        (["--max-epochs", "zero"], 2, "invalid int value"),
        (["not-an-override"], 2, "unrecognised argument"),
    ],
)
def test_configuration_errors_exit_2(
    workdir: Path, args: list[str], code: int, fragment: str
) -> None:
    result = run_cli("train", *TINY, "--dry-run", *args, cwd=workdir)
    assert result.returncode == code
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_hub_dataset_exits_3(workdir: Path) -> None:
    # no HF_HUB_OFFLINE: the real network probe fails on this machine, which has no internet
    result = run_cli(
        "train", "--model", "tiny-bert", "--dry-run", cwd=workdir, env={"HF_HUB_OFFLINE": "0"}
    )
    assert result.returncode == 3
    assert (
        "cannot reach the Hugging Face Hub" in result.stderr and "irlab-udc/redsm5" in result.stderr
    )
    assert "--dataset synthetic" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unloadable_model_exits_3(workdir: Path) -> None:
    result = run_cli(
        "train", "--model", "mental-bert", "--dataset", "synthetic", "--dry-run", cwd=workdir
    )
    assert result.returncode == 3
    assert "mental/mental-bert-base-uncased" in result.stderr and "minilm" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_local_dataset_exits_3(workdir: Path) -> None:
    data = workdir / "data"
    data.mkdir()
    (data / "redsm5_posts.csv").write_text("post_id,text\np1,hello\np1,again\n")
    (data / "redsm5_annotations.csv").write_text(
        "post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\np1,s_1_0_0,hello,ANHEDONIA,1,x\n"
    )
    result = run_cli(
        "train", "--model", "tiny-bert", "--dataset", str(data), "--dry-run", cwd=workdir
    )
    assert result.returncode == 3
    assert "duplicate post ids" in result.stderr and "p1" in result.stderr


def test_diverging_training_exits_1_naming_epoch_and_step(workdir: Path) -> None:
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "1",
        "--dry-run",
        *SMALL_DATA,
        "trainer.learning_rate=1e4",
        "trainer.max_grad_norm=0",
        "trainer.warmup_ratio=0",
        cwd=workdir,
    )
    assert result.returncode == 1, result.stderr
    assert "non-finite loss" in result.stderr and "epoch 1, step" in result.stderr
