"""Checkpoint files on a real filesystem: atomic writes, manifest, slimming, retention,
verification and the resume fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.checkpointing.atomic import TEMP_MARKER
from dataaug_multi_both.checkpointing.checkpointer import Checkpointer
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.store import CheckpointStore, file_sha256, serialize
from dataaug_multi_both.config.schema import RetentionConfig
from dataaug_multi_both.errors import StorageError
from dataaug_multi_both.training.run_state import select_resume_checkpoint
from tests.conftest import mounted_tmpfs

WEIGHTS = 20_000  # floats per fake model: 80 kB


def payload(epoch: int, size: int = WEIGHTS) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(epoch)
    weights = {"w": torch.randn(size, generator=generator)}
    return {
        ckpt.KIND: "resume",
        ckpt.EPOCH: epoch,
        ckpt.MODEL: weights,
        ckpt.OPTIMIZER: {
            "state": {0: {"exp_avg": torch.zeros(size), "exp_avg_sq": torch.zeros(size)}}
        },
        ckpt.SCHEDULER: {"last_epoch": epoch},
        ckpt.SCALER: {},
        ckpt.RNG: {"torch": torch.get_rng_state()},
        ckpt.METRICS: {},
    }


def run_epochs(
    directory: Path, metrics: list[float], growth: float = 1.0, **retention: Any
) -> tuple[Checkpointer, list[tuple]]:
    """Save one fake epoch per metric value; each payload is `growth` times the last."""
    events: list[tuple] = []
    config = RetentionConfig(**{"disk_space_threshold_percent": 0.0, **retention})
    checkpointer = Checkpointer(
        CheckpointStore(directory, "t", "val/criteria_matcher/f1", directory.parent),
        config,
        lambda action, **f: events.append((action, f.get("epoch"))),
    )
    history: list[float] = []
    for epoch, value in enumerate(metrics, start=1):
        best = all(value > h for h in history)
        if checkpointer.wants(epoch, best, epoch == len(metrics)):  # as the training loop does
            data = serialize(payload(epoch, int(WEIGHTS * growth ** (epoch - 1))))
            checkpointer.write_serialized(data, "resume", epoch, epoch * 10, value, {"m": value})
        history.append(value)
    return checkpointer, events


def on_disk(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".pt")


def test_defaults_keep_best_weights_only_and_latest_resume(tmp_path: Path) -> None:
    checkpointer, events = run_epochs(
        tmp_path, [0.2, 0.9, 0.5, 0.4, 0.3, 0.35, 0.1, 0.2, 0.3, 0.25]
    )
    manifest = CheckpointManifest.read(tmp_path)
    assert manifest is not None and len(manifest.records) == 10
    assert on_disk(tmp_path) == ["epoch_002.pt", "epoch_010.pt"]
    best, latest = manifest.by_epoch(2), manifest.by_epoch(10)
    assert (best.kind, best.is_best, best.retained) == ("weights-only", True, True)
    assert (latest.kind, latest.is_latest) == ("resume", True)
    assert all(not r.retained for r in manifest.records if r.epoch not in (2, 10))
    slim = torch.load(tmp_path / "epoch_002.pt", weights_only=True)
    assert ckpt.OPTIMIZER not in slim and slim[ckpt.KIND] == "weights-only"
    assert torch.equal(slim[ckpt.MODEL]["w"], payload(2)[ckpt.MODEL]["w"])
    for record in manifest.retained():
        assert file_sha256(tmp_path / record.file) == record.sha256
        assert (tmp_path / record.file).stat().st_size == record.size_bytes
    assert ("slimmed", 2) in events and ("deleted", 3) in events
    assert not [p for p in tmp_path.iterdir() if TEMP_MARKER in p.name]


def test_keep_last_n_and_best_k(tmp_path: Path) -> None:
    run_epochs(tmp_path, [0.9, 0.1, 0.8, 0.2, 0.3], keep_last_n=2, keep_best_k=2)
    assert on_disk(tmp_path) == ["epoch_001.pt", "epoch_003.pt", "epoch_004.pt", "epoch_005.pt"]
    manifest = CheckpointManifest.read(tmp_path)
    assert manifest is not None
    kinds = {r.epoch: r.kind for r in manifest.retained()}
    assert kinds == {1: "weights-only", 3: "weights-only", 4: "resume", 5: "resume"}


def test_min_interval_saves_new_best_and_final(tmp_path: Path) -> None:
    _, events = run_epochs(tmp_path, [0.5, 0.4, 0.3, 0.6, 0.2, 0.1, 0.05], min_interval_epochs=3)
    saved = [e for action, e in events if action == "saved"]
    assert saved == [1, 4, 7]  # 1 first, 4 new best (and interval), 7 final; 2-3, 5-6 too soon


def test_size_cap(tmp_path: Path) -> None:
    # resume files are ~240 kB, weights-only ~80 kB; a 0.0003 GB (300 kB) cap fits latest + best only
    run_epochs(
        tmp_path, [0.5, 0.9, 0.8, 0.7], keep_last_n=1, keep_best_k=2, max_total_size_gb=0.0003
    )
    assert on_disk(tmp_path) == ["epoch_002.pt", "epoch_004.pt"]


def test_best_dtype_bf16_halves_the_slim_checkpoint(tmp_path: Path) -> None:
    run_epochs(tmp_path, [0.9, 0.1], best_dtype="bf16")
    slim = torch.load(tmp_path / "epoch_001.pt", weights_only=True)
    assert slim[ckpt.MODEL]["w"].dtype == torch.bfloat16 and slim[ckpt.WEIGHTS_DTYPE] == "bfloat16"
    assert (tmp_path / "epoch_001.pt").stat().st_size < WEIGHTS * 2 + 10_000


def test_stray_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    run_epochs(tmp_path, [0.5])
    stray = tmp_path / f".epoch_002.pt{TEMP_MARKER}123-abcd"
    stray.write_bytes(b"half a checkpoint")
    store = CheckpointStore(tmp_path, "t", "m", tmp_path.parent)
    assert store.remove_stray_temp_files() == [stray] and not stray.exists()
    assert on_disk(tmp_path) == ["epoch_001.pt"]


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_resume_falls_back_when_latest_is_corrupted(tmp_path: Path) -> None:
    run_epochs(tmp_path, [0.1, 0.2, 0.3], keep_last_n=2)
    flip_one_byte(tmp_path / "epoch_003.pt")
    point = select_resume_checkpoint(tmp_path / "epoch_003.pt")
    assert point.path.name == "epoch_002.pt" and point.payload[ckpt.EPOCH] == 2
    assert any("SHA256 does not match" in w for w in point.warnings)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_no_verifying_resume_checkpoint_is_exit_4(tmp_path: Path, damage: str) -> None:
    run_epochs(tmp_path, [0.1, 0.2])
    target = tmp_path / "epoch_002.pt"
    if damage == "flip":
        flip_one_byte(target)
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:1000])
    elif damage == "delete":
        target.unlink()
    else:
        manifest = tmp_path / "manifest.json"
        manifest.write_text(manifest.read_text().replace(file_sha256(target), "0" * 64))
    with pytest.raises(StorageError) as err:
        select_resume_checkpoint(target)
    assert err.value.exit_code == 4 and "no earlier resume checkpoint" in err.value.message


def test_a_weights_only_checkpoint_is_continued_from_only_when_named(tmp_path: Path) -> None:
    run_epochs(tmp_path, [0.9, 0.1])
    named = select_resume_checkpoint(tmp_path / "epoch_001.pt")
    assert named.weights_only and "not an exact resume" in named.warnings[0]
    assert not select_resume_checkpoint(tmp_path / "epoch_002.pt").weights_only
    data = bytearray((tmp_path / "epoch_002.pt").read_bytes())
    data[-100] ^= 0xFF  # the last resume checkpoint corrupted: refused, with the way out
    (tmp_path / "epoch_002.pt").write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"epoch_001.pt \(epoch 1, weights-only\) does"):
        select_resume_checkpoint(tmp_path / "epoch_002.pt")


def test_disk_threshold_refuses_before_writing(tmp_path: Path) -> None:
    # a threshold of 99.99% can never be met: nothing may be written, exit 4
    with pytest.raises(StorageError) as err:
        run_epochs(tmp_path, [0.5], disk_space_threshold_percent=99.99)
    assert (
        err.value.exit_code == 4
        and "GB free" in err.value.message
        and "99.99%" in err.value.message
    )
    assert not list(tmp_path.glob("*.pt")) and not [
        p for p in tmp_path.iterdir() if TEMP_MARKER in p.name
    ]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs mounted for real (needs root and mount rights; skipped otherwise)."""
    yield from mounted_tmpfs(tmp_path / "tiny", "1m")


def test_free_space_check_drops_all_but_best_and_latest_first(small_tmpfs: Path) -> None:
    # resume checkpoints of ~240 kB on a 1 MB filesystem: the 5th save does not fit beside
    # the first four, so everything but best + latest goes before it is written
    directory = small_tmpfs / "checkpoints"
    _, events = run_epochs(directory, [0.1, 0.2, 0.3, 0.4, 0.5], keep_last_n=10, keep_best_k=0)
    assert events.index(("deleted", 1)) < events.index(("saved", 5))
    assert ("deleted", 4) not in events  # epoch 4: best and latest when epoch 5 was saved
    assert on_disk(directory)[-1] == "epoch_005.pt"


def test_disk_full_during_write_is_exit_4_and_leaves_previous_checkpoints(
    small_tmpfs: Path,
) -> None:
    # two checkpoints on the 1 MB filesystem, then a write that does not fit (the disk
    # filled up after the free-space check, e.g. by another process) fails half-way
    directory = small_tmpfs / "checkpoints"
    checkpointer, _ = run_epochs(directory, [0.1, 0.2], keep_last_n=10, keep_best_k=0)
    too_big = serialize(payload(3, WEIGHTS * 4))
    with pytest.raises(StorageError) as err:
        checkpointer.store.save_serialized(too_big, "resume", 3, 30, 0.3, {"m": 0.3})
    assert err.value.exit_code == 4 and "no space left" in err.value.message
    assert not [p for p in directory.iterdir() if TEMP_MARKER in p.name]
    manifest = CheckpointManifest.read(directory)
    assert manifest is not None and manifest.retained()
    for record in manifest.retained():
        assert file_sha256(directory / record.file) == record.sha256
