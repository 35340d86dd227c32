"""Taking back what a failed start wrote: only the start-up files, never what a symlink
points at, never a directory someone else put a file in."""

from __future__ import annotations

from pathlib import Path

from dataaug_multi_both.checkpointing.discard import discard_unstarted_run, discard_unstarted_study


def started_run(root: Path) -> Path:
    trial = root / "trial_x"
    (trial / "logs").mkdir(parents=True)
    (trial / "checkpoints").mkdir()
    for name in ("config.yaml", "split_manifest.json", "logs/train.jsonl", ".lock"):
        (trial / name).write_text("x")
    return trial


def test_a_run_that_did_not_start_goes_whole(tmp_path: Path) -> None:
    trial = started_run(tmp_path)
    assert discard_unstarted_run(trial, lambda: (trial / ".lock").unlink())
    assert not trial.exists()


def test_a_file_someone_else_put_there_keeps_the_directory(tmp_path: Path) -> None:
    trial = started_run(tmp_path)
    (trial / "notes.txt").write_text("mine")
    assert not discard_unstarted_run(trial, lambda: (trial / ".lock").unlink())
    assert sorted(p.name for p in trial.iterdir()) == ["notes.txt"]


def test_a_checkpoint_keeps_the_run(tmp_path: Path) -> None:
    trial = started_run(tmp_path)
    (trial / "checkpoints" / "epoch_001.pt").write_bytes(b"weights")
    assert not discard_unstarted_run(trial, lambda: (trial / ".lock").unlink())
    assert (trial / "config.yaml").is_file()


def test_a_symlinked_start_up_file_is_removed_not_followed(tmp_path: Path) -> None:
    trial = started_run(tmp_path)
    target = tmp_path / "precious.yaml"
    target.write_text("keep me")
    (trial / "config.yaml").unlink()
    (trial / "config.yaml").symlink_to(target)
    assert discard_unstarted_run(trial, lambda: (trial / ".lock").unlink())
    assert target.read_text() == "keep me"


def test_a_study_keeps_a_database_that_is_not_its_own(tmp_path: Path) -> None:
    study = tmp_path / "study_x"
    (study / "logs").mkdir(parents=True)
    (study / "config.yaml").write_text("x")
    (study / "optuna_study.db").write_text("x")
    assert not discard_unstarted_study(study, None)
    assert [p.name for p in study.iterdir()] == ["optuna_study.db"]
    assert discard_unstarted_study(study, "optuna_study.db")
    assert not study.exists()
