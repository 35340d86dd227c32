"""Manifests are input from a stranger: an edited or planted manifest must never decide what
is deleted outside its own checkpoint files, and never end in a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from dataaug_multi_both.checkpointing import lock as trial_lock
from dataaug_multi_both.checkpointing.cleanup import TrialFacts, execute, plan_trial
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.store import CheckpointStore
from dataaug_multi_both.checkpointing.study_retention import RELEASE, apply_trial_decision
from dataaug_multi_both.config.schema import RetentionConfig
from dataaug_multi_both.errors import StorageError, TrialInUse

SHA = "0" * 64


def record(**changes: Any) -> dict[str, Any]:
    base = {
        "file": "epoch_001.pt",
        "epoch": 1,
        "step": 10,
        "metric_value": 0.5,
        "metrics": {"val/loss": 1.0, "val/auc_X": None},
        "kind": "resume",
        "size_bytes": 4,
        "sha256": SHA,
        "created": "2026-11-27T00:00:00Z",
        "retained": True,
    }
    return {**base, **changes}


def plant(trial_dir: Path, *records: dict[str, Any], **top: Any) -> Path:
    directory = trial_dir / "checkpoints"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "trial_id": trial_dir.name,
        "optimization_metric": "val/loss",
        "records": list(records),
    }
    (directory / "manifest.json").write_text(json.dumps({**manifest, **top}))
    return directory


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Another trial's checkpoint, which nothing done to trial_a may touch."""
    path = tmp_path / "trial_b" / "checkpoints" / "epoch_001.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"keep")
    return path


HOSTILE_FILES = [
    "ABSOLUTE",
    "../../trial_b/checkpoints/epoch_001.pt",
    "epoch_001.pt/../../../trial_b/checkpoints/epoch_001.pt",
    "./epoch_001.pt",
    "epoch_002.pt",  # a checkpoint name, but not that of the record's epoch
    "manifest.json",
]


@pytest.mark.parametrize("file", HOSTILE_FILES)
def test_a_file_that_is_not_the_epochs_checkpoint_name_is_refused_everywhere(
    tmp_path: Path, victim: Path, file: str
) -> None:
    trial_a = tmp_path / "trial_a"
    directory = plant(trial_a, record(file=str(victim) if file == "ABSOLUTE" else file))
    with pytest.raises(StorageError, match=r"records\[0\]\.file"):
        CheckpointManifest.read(directory)
    # training retention (the store opens the manifest before the first save)
    with pytest.raises(StorageError, match=r"records\[0\]\.file"):
        CheckpointStore(directory, trial_a.name, "val/loss", trial_a)
    # study retention
    with pytest.raises(StorageError, match=r"records\[0\]\.file"):
        apply_trial_decision(trial_a, RELEASE)
    # cleanup: planned (dry run) and carried out, the trial is reported and left alone
    for mode in ("orphaned-only", "policy", "aggressive"):
        plan = plan_trial(TrialFacts(trial_a, retention=RetentionConfig()), mode)
        assert plan.actions == [] and "records[0].file" in plan.problems[0]
        execute(plan, tmp_path)
    assert victim.read_bytes() == b"keep"


@pytest.mark.parametrize(
    "changes, where",
    [
        ({"epoch": "1"}, "epoch"),
        ({"epoch": True}, "epoch"),
        ({"size_bytes": "big"}, "size_bytes"),
        ({"metric_value": "0.5"}, "metric_value"),
        ({"metrics": {"val/loss": "x"}}, "val/loss"),
        ({"metrics": [1, 2]}, "metrics"),
        ({"sha256": "../.."}, "sha256"),
        ({"kind": {"a": 1}}, "kind"),
        ({"step": -1}, "negative"),
        ({"retained": "yes"}, "retained"),
        ({"decision_threshold": 0.5}, "decision_threshold"),
    ],
)
def test_wrong_types_are_a_storage_error_naming_the_entry(
    tmp_path: Path, changes: dict[str, Any], where: str
) -> None:
    directory = plant(tmp_path / "trial_a", record(), record(**changes))
    with pytest.raises(StorageError, match=rf"records\[1\].*{where}"):
        CheckpointManifest.read(directory)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 200_000 + "]" * 200_000,  # RecursionError in json before
        '{"trial_id": "a", "optimization_metric": "m", "records": "epoch_001.pt"}',
        '{"trial_id": 1, "optimization_metric": "m", "records": []}',
        '{"trial_id": "a", "optimization_metric": "m", "records": [], "trial_dir": ["x"]}',
        "[1]",
        "\xff\xfe not utf-8",
        "",
    ],
)
def test_corrupt_or_nested_manifests_are_a_storage_error(tmp_path: Path, text: str) -> None:
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    (directory / "manifest.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(StorageError, match="manifest"):
        CheckpointManifest.read(directory)


def test_a_symlinked_checkpoint_is_unlinked_never_followed(tmp_path: Path, victim: Path) -> None:
    trial_a = tmp_path / "trial_a"
    directory = plant(trial_a, record())
    (directory / "epoch_001.pt").symlink_to(victim)
    assert apply_trial_decision(trial_a, RELEASE) == 4
    assert not (directory / "epoch_001.pt").is_symlink()
    assert victim.read_bytes() == b"keep"


def test_a_manifest_written_by_the_store_reads_back(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "t", "val/loss", tmp_path)
    store.save({"kind": "resume", "w": torch.zeros(2)}, 1, 3, 0.25, {"val/loss": 0.25})
    again = CheckpointManifest.read(tmp_path)
    assert again is not None and again.to_dict() == store.manifest.to_dict()


HOLDER = """
import sys, time
from pathlib import Path
from dataaug_multi_both.checkpointing import lock
lock.acquire(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def hold_lock_in_another_process(trial_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(trial_dir)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_lock_keeps_retention_and_cleanup_away_and_a_dead_one_blocks_nothing(
    tmp_path: Path,
) -> None:
    trial = tmp_path / "trial_a"
    directory = plant(trial, record())
    (directory / "epoch_001.pt").write_bytes(b"live")
    holder = hold_lock_in_another_process(trial)
    try:
        assert trial_lock.is_running(trial)
        with pytest.raises(TrialInUse, match="in use by another process \\(pid"):
            trial_lock.acquire(trial)
        assert apply_trial_decision(trial, RELEASE) == 0  # a live trial is not touched
        plan = plan_trial(TrialFacts(trial, retention=RetentionConfig()), "aggressive")
        assert execute(plan, tmp_path) == 0 and "trial_a: running" in plan.skipped
        assert (directory / "epoch_001.pt").read_bytes() == b"live"
    finally:
        holder.kill()
        holder.wait()
    started = time.monotonic()
    assert not trial_lock.is_running(trial)  # the kernel dropped the dead process's lock
    assert apply_trial_decision(trial, RELEASE) == 4
    assert not (directory / "epoch_001.pt").exists()
    assert time.monotonic() - started < 5


def test_a_symlink_planted_as_the_lock_is_refused(tmp_path: Path) -> None:
    trial = tmp_path / "trial_a"
    trial.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (trial / ".lock").symlink_to(target)
    with pytest.raises(StorageError, match="cannot lock"):
        trial_lock.acquire(trial)
    assert target.read_text() == "untouched"
    assert not trial_lock.is_running(trial)


@pytest.mark.parametrize("link", ["trial", "checkpoints"])
def test_a_symlinked_trial_or_checkpoints_dir_is_left_alone(
    tmp_path: Path, victim: Path, link: str
) -> None:
    """A trial (or its checkpoints/) that is a link into another trial: retention and cleanup
    must not delete through it."""
    other = victim.parents[1]  # trial_b, with a manifest naming its real checkpoint
    plant(other, record())
    trial_a = tmp_path / "trial_a"
    if link == "trial":
        trial_a.symlink_to(other)
    else:
        trial_a.mkdir()
        (trial_a / "checkpoints").symlink_to(other / "checkpoints")
    assert apply_trial_decision(trial_a, RELEASE) == 0
    plan = plan_trial(TrialFacts(trial_a, retention=RetentionConfig()), "aggressive")
    assert plan.actions == [] and "symlink" in plan.problems[0]
    execute(plan, tmp_path)
    assert victim.read_bytes() == b"keep"


def test_a_fifo_or_symlink_planted_as_a_lock_is_a_storage_error(tmp_path: Path) -> None:
    import os

    from dataaug_multi_both.checkpointing.lock import study_retention_lock

    trial = tmp_path / "trial_a"
    trial.mkdir()
    os.mkfifo(trial / ".lock")
    with pytest.raises(StorageError, match="cannot lock"):
        trial_lock.acquire(trial)
    study = tmp_path / "study_x"
    study.mkdir()
    (study / ".retention.lock").symlink_to(tmp_path / "elsewhere")
    with (
        pytest.raises(StorageError, match="cannot lock the study's retention"),
        study_retention_lock(study),
    ):
        pass
    assert not (tmp_path / "elsewhere").exists()


def test_a_lock_hint_with_odd_content_is_only_a_hint(tmp_path: Path) -> None:
    trial = tmp_path / "trial_a"
    trial.mkdir()
    for text in ('{"pid": Infinity, "host": "h"}', "[1]", "[" * 100_000, '{"pid": 1e999}'):
        (trial / ".lock").write_text(text)
        assert trial_lock.holder(trial) == "unknown process"


def test_a_manifest_with_too_many_records_is_refused(tmp_path: Path) -> None:
    from dataaug_multi_both.checkpointing.manifest import MAX_RECORDS

    records = [record(epoch=1)] * (MAX_RECORDS + 1)
    directory = plant(tmp_path / "trial_a", *records)
    with pytest.raises(StorageError, match="more than"):
        CheckpointManifest.read(directory)
