"""A 10-epoch run with the default retention policy, and `list_checkpoints` over it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch

from tests.integration.conftest import TINY, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ten_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("ten")
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "10",
        "--optimization-metric",
        "val_auc",
        "dataset.synthetic_num_posts=30",
        "dataset.max_length=64",
        "dataset.doc_stride=8",
        "trainer.learning_rate=1e-3",
        "output.trial_id=ten",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    return workdir / "experiments" / "trial_ten"


def test_defaults_leave_best_weights_only_and_latest_resume(ten_epochs: Path) -> None:
    manifest = json.loads((ten_epochs / "checkpoints" / "manifest.json").read_text())
    assert [r["epoch"] for r in manifest["records"]] == list(range(1, 11))
    retained = [r for r in manifest["records"] if r["retained"]]
    best = max(manifest["records"], key=lambda r: (r["metric_value"], -r["epoch"]))
    on_disk = sorted(p.name for p in (ten_epochs / "checkpoints").glob("*.pt"))
    if best["epoch"] == 10:
        assert on_disk == ["epoch_010.pt"]
    else:
        assert on_disk == sorted([best["file"], "epoch_010.pt"])
        assert next(r for r in retained if r["epoch"] == best["epoch"])["kind"] == "weights-only"
        slim = torch.load(ten_epochs / "checkpoints" / best["file"], weights_only=True)
        assert "optimizer" not in slim
    latest = torch.load(ten_epochs / "checkpoints" / "epoch_010.pt", weights_only=True)
    assert latest["kind"] == "resume" and {"optimizer", "scheduler", "scaler", "rng"} <= set(latest)
    log = [
        json.loads(line) for line in (ten_epochs / "logs" / "train.jsonl").read_text().splitlines()
    ]
    actions = {r["action"] for r in log if r["event"] == "checkpoint"}
    assert {"saved", "deleted"} <= actions
    sizes = [r["metrics"]["system/checkpoint_size_mb"] for r in log if r["event"] == "epoch_end"]
    assert len(sizes) == 10 and all(s > 0 for s in sizes)


def test_list_checkpoints_formats(ten_epochs: Path, tmp_path: Path) -> None:
    table = run_cli("list_checkpoints", "--trial-dir", str(ten_epochs), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    for header in (
        "Checkpoint",
        "Epoch",
        "Step",
        "Val AUC",
        "Is Best",
        "Is Latest",
        "Retained",
        "Kind",
        "Size (MB)",
    ):
        assert header in table.stdout
    assert table.stdout.count("epoch_0") == 10

    as_json = run_cli(
        "list_checkpoints", "--trial-dir", str(ten_epochs), "--format", "json", cwd=tmp_path
    )
    rows = json.loads(as_json.stdout)
    assert len(rows) == 10
    keys = {"checkpoint", "path", "epoch", "step", "metric", "metric_value", "is_best", "is_latest"}
    assert keys | {"retained", "kind", "size_mb", "sha256"} == set(rows[0])
    assert sum(r["is_latest"] for r in rows) == 1 and sum(r["is_best"] for r in rows) == 1
    retained = [r for r in rows if r["retained"]]
    for row in retained:
        assert row["size_mb"] == pytest.approx(Path(row["path"]).stat().st_size / 1e6, abs=1e-3)
    assert all(r["size_mb"] is None for r in rows if not r["retained"])

    with_metrics = run_cli(
        "list_checkpoints",
        "--trial-dir",
        str(ten_epochs),
        "--format",
        "json",
        "--show-metrics",
        cwd=tmp_path,
    )
    assert "val/criteria_matcher/f1" in json.loads(with_metrics.stdout)[0]["metrics"]

    as_csv = run_cli(
        "list_checkpoints", "--trial-dir", str(ten_epochs), "--format", "csv", cwd=tmp_path
    )
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(parsed) == 10 and parsed[0]["checkpoint"] == "epoch_001.pt"


def test_list_checkpoints_missing_trial_dir_is_exit_1(tmp_path: Path) -> None:
    result = run_cli("list_checkpoints", "--trial-dir", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 1 and "trial directory not found" in result.stderr
