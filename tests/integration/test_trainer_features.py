"""What a Hugging Face Trainer or Lightning user reaches for on day one, through the real
CLI: step records, evaluation and mid-epoch checkpoints every N steps (a kill mid-epoch,
then a bit-identical resume), early stopping, named LR schedules, gradient checkpointing and
a loss as the optimisation metric."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from tests.integration.conftest import TINY, read_jsonl, run_cli

pytestmark = pytest.mark.integration

ARGS = [
    *TINY,
    "--max-epochs",
    "2",
    "dataset.synthetic_num_posts=40",
    "dataset.max_length=80",
    "dataset.doc_stride=16",
    "trainer.learning_rate=1e-3",
    "trainer.num_threads=1",
    "tracking.backend=none",
]
STEPS = ["trainer.logging_steps=4", "trainer.eval_steps=12", "trainer.save_steps=5"]


def events(trial: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in read_jsonl(trial / "logs" / "train.jsonl") if r["event"] == kind]


def comparable(trial: Path) -> dict[str, Any]:
    """Everything a resume must reproduce: epoch and evaluation metrics, step losses,
    learning rates and gradient norms, by step (wall-clock numbers left out)."""

    def values(record: dict[str, Any]) -> dict[str, Any]:
        metrics = record["metrics"]
        return {
            k: v for k, v in metrics.items() if not k.startswith("system/") and "per_sec" not in k
        }

    out: dict[str, Any] = {}
    for kind in ("epoch_end", "evaluation", "step"):
        records = events(trial, kind)
        steps = [(r["epoch"], r["step"]) for r in records]
        assert len(steps) == len(set(steps)), f"duplicate {kind} records: {steps}"
        out[kind] = {(r["epoch"], r["step"]): values(r) for r in records}
    return out


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("straight")
    result = run_cli("train", *ARGS, *STEPS, "output.trial_id=straight", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "experiments" / "trial_straight"


def test_step_records_evaluations_and_mid_epoch_checkpoints(straight: Path) -> None:
    steps = events(straight, "step")
    assert [r["step"] for r in steps][:3] == [4, 8, 12]
    first = steps[0]["metrics"]
    assert {
        "train_step/criteria_matcher/loss",
        "train_step/evidence_binder/loss",
        "train_step/learning_rate",
        "train_step/grad_norm",
        "train_step/samples_per_sec",
    } <= first.keys()
    # linear warm-up over the first 10% of the steps: the rate at step 4 is below the peak
    assert 0 < first["train_step/learning_rate"] < 1e-3
    evaluations = events(straight, "evaluation")
    assert evaluations and all(r["step"] % 12 == 0 for r in evaluations)
    assert "val/criteria_matcher/f1" in evaluations[0]["metrics"]
    saves = [r for r in events(straight, "checkpoint") if r.get("kind") == "mid-epoch"]
    assert saves and all(r["step"] % 5 == 0 for r in saves)
    # at the end only the epoch checkpoints are left: the mid-epoch one is behind them
    checkpoints = straight / "checkpoints"
    assert not (checkpoints / "mid_epoch.pt").exists()
    assert json.loads((checkpoints / "manifest.json").read_text())["mid_epoch"] is None


def kill_mid_epoch(workdir: Path, trial_id: str, epoch: int) -> None:
    """Start `train`, SIGKILL it once a mid-epoch checkpoint of `epoch` is recorded."""
    manifest = workdir / "experiments" / f"trial_{trial_id}" / "checkpoints" / "manifest.json"
    command = [sys.executable, "-m", "dataaug_multi_both.cli.train", *ARGS, *STEPS]
    proc = subprocess.Popen(
        [*command, f"output.trial_id={trial_id}"],
        cwd=workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            mid = json.loads(manifest.read_text()).get("mid_epoch")
        except (OSError, ValueError):
            mid = None
        if mid and mid["epoch"] == epoch and mid["batches_done"] >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"


def test_a_kill_mid_epoch_resumes_from_the_step_bit_identically(
    straight: Path, tmp_path: Path
) -> None:
    kill_mid_epoch(tmp_path, "killed", epoch=2)
    trial = tmp_path / "experiments" / "trial_killed"
    mid = json.loads((trial / "checkpoints" / "manifest.json").read_text())["mid_epoch"]
    # Lightning's ckpt_path="last": the trial directory means its latest progress
    resumed = run_cli("train", "--resume-from", str(trial), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    said = f"inside epoch 2 (after batch {mid['batches_done']}, step {mid['step']})"
    assert said in " ".join((resumed.stdout + resumed.stderr).split())  # wrapped at 160
    assert comparable(trial) == comparable(straight)
    a = torch.load(straight / "checkpoints" / "epoch_002.pt", weights_only=True)["model"]
    b = torch.load(trial / "checkpoints" / "epoch_002.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    resume = events(trial, "resume")
    assert len(resume) == 1 and resume[0]["step"] == mid["step"]


def test_a_corrupted_mid_epoch_checkpoint_falls_back_to_the_epoch_before(tmp_path: Path) -> None:
    kill_mid_epoch(tmp_path, "torn", epoch=2)
    checkpoints = tmp_path / "experiments" / "trial_torn" / "checkpoints"
    # the listing shows it as what a resume continues from; cleanup keeps it
    listed = run_cli(
        "list_checkpoints", "--trial-dir", str(checkpoints.parent), "--format", "json", cwd=tmp_path
    )
    rows = {r["checkpoint"]: r for r in json.loads(listed.stdout)}
    assert rows["mid_epoch.pt"]["is_latest"] and not rows["epoch_001.pt"]["is_latest"]
    assert rows["mid_epoch.pt"]["kind"].startswith("mid-epoch (batch ")
    cleaned = run_cli("cleanup", "--trial-dir", str(checkpoints.parent), cwd=tmp_path)
    assert cleaned.returncode == 0, cleaned.stderr
    assert (checkpoints / "mid_epoch.pt").is_file()
    data = bytearray((checkpoints / "mid_epoch.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (checkpoints / "mid_epoch.pt").write_bytes(bytes(data))
    resumed = run_cli("train", "--resume-from", str(checkpoints.parent), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    output = resumed.stdout + resumed.stderr
    assert "mid_epoch.pt: SHA256 does not match" in output
    assert "falling back to epoch_001.pt" in output


def test_early_stopping_ends_the_run_with_exit_0(tmp_path: Path) -> None:
    result = run_cli(
        "train",
        *ARGS,
        "--max-epochs",
        "6",
        "trainer.learning_rate=1e-9",  # nothing moves: no evaluation improves on the first
        "trainer.decision_threshold=0.5",
        "trainer.early_stopping_patience=2",
        "output.trial_id=patient",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trial = tmp_path / "experiments" / "trial_patient"
    stop = events(trial, "early_stopping")
    assert len(stop) == 1 and stop[0]["epoch"] == 3
    assert "has not improved" in stop[0]["reason"] and "early stopping" in result.stdout
    assert len(events(trial, "epoch_end")) == 3
    assert events(trial, "run_end")[0]["status"] == "FINISHED"


def test_a_named_schedule_shapes_the_logged_learning_rate(tmp_path: Path) -> None:
    result = run_cli(
        "train",
        *ARGS,
        "--max-epochs",
        "1",
        "trainer.warmup_ratio=0.0",
        "trainer.logging_steps=1",
        "trainer.lr_scheduler_type=cosine",
        "output.trial_id=cosine",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    steps = events(tmp_path / "experiments" / "trial_cosine", "step")
    total = len(steps)
    for record in steps:  # the rate after optimizer step s is the cosine's value at s
        s = record["step"]
        expected = 1e-3 * 0.5 * (1 + math.cos(math.pi * s / total))
        assert record["metrics"]["train_step/learning_rate"] == pytest.approx(expected, abs=1e-12)


def test_gradient_checkpointing_trains_the_same_model(tmp_path: Path) -> None:
    runs = {}
    for name, setting in (("plain", "false"), ("recompute", "true")):
        result = run_cli(
            "train",
            *ARGS,
            "--max-epochs",
            "1",
            f"model.gradient_checkpointing={setting}",
            f"output.trial_id={name}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        runs[name] = events(tmp_path / "experiments" / f"trial_{name}", "epoch_end")[0]["metrics"]
    for key in ("train/criteria_matcher/loss", "val/criteria_matcher/loss"):
        assert runs["recompute"][key] == pytest.approx(runs["plain"][key], rel=1e-5), key


def test_a_study_minimises_validation_loss_and_searches_schedules(tmp_path: Path) -> None:
    config = tmp_path / "loss_study.yaml"
    config.write_text(
        "defaults:\n  - hpo_small\n  - _self_\n"
        "study:\n  optimization_metric: val_loss\n  pruner: {type: NopPruner}\n"
        "search_space:\n"
        "  trainer.lr_scheduler_type: {type: categorical, choices: [linear, cosine]}\n"
    )
    result = run_cli(
        "hpo",
        "--config",
        str(config),
        "--num-trials",
        "3",
        "search_space.model_id.choices=[tiny-bert]",
        "dataset.synthetic_num_posts=30",
        "dataset.max_length=64",
        "dataset.doc_stride=8",
        "trainer.max_epochs=3",
        "trainer.learning_rate=3e-3",
        "trainer.num_threads=1",
        "trainer.eval_steps=7",
        "tracking.backend=none",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    experiments = tmp_path / "experiments"
    (study_dir,) = experiments.glob("study_*")
    ends = [e for e in read_jsonl(study_dir / "logs" / "hpo.jsonl") if e["event"] == "trial_end"]
    assert len(ends) == 3 and all(e["state"] == "COMPLETE" for e in ends)
    assert {e["params"]["trainer.lr_scheduler_type"] for e in ends} <= {"linear", "cosine"}
    for end in ends:
        trial = experiments / end["trial_id"]
        losses = [r["metrics"]["val/criteria_matcher/loss"] for r in events(trial, "epoch_end")]
        # the study maximises the negative of the lowest validation loss ...
        assert end["value"] == pytest.approx(-min(losses))
        # ... and the trial's best checkpoint is the epoch of that lowest loss
        manifest = json.loads((trial / "checkpoints" / "manifest.json").read_text())
        best = [r["epoch"] for r in manifest["records"] if r["is_best"]]
        assert best == [losses.index(min(losses)) + 1]
        # with eval_steps the pruner hears every evaluation, at the global step, as minus
        # the loss: the step evaluations and the epoch ends
        evaluations = events(trial, "evaluation")
        ends_at = [r["step"] for r in events(trial, "epoch_end")]
        record = json.loads((study_dir / "study.json").read_text())
        study = optuna.load_study(study_name=record["name"], storage=record["storage"])
        (frozen,) = [
            t for t in study.trials if f"trial_{t.user_attrs['trial_id']}" == end["trial_id"]
        ]
        reported = frozen.intermediate_values
        assert sorted(reported) == sorted([r["step"] for r in evaluations] + ends_at)
        first = evaluations[0]
        assert reported[first["step"]] == -first["metrics"]["val/criteria_matcher/loss"]
    # what users read shows the loss itself, next to the prevalence predictor's loss
    best_loss = -max(e["value"] for e in ends)
    assert f"best Val Loss {best_loss:.4f}" in result.stdout
    assert "all_absent n/a" in result.stdout and "train_rate 0." in result.stdout
    listed = run_cli("list_studies", "--format", "json", cwd=tmp_path)
    (row,) = json.loads(listed.stdout)
    assert row["best_metric"] == pytest.approx(best_loss)
