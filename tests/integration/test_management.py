"""`evaluate_study`, `list_studies` and `cleanup` on real studies."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from dataaug_multi_both.checkpointing import lock as trial_lock
from tests.integration.conftest import HPO_SMALL, REPO, run_cli

pytestmark = pytest.mark.integration

SMALL = [
    "search_space.model_id.choices=[tiny-bert]",
    "dataset.synthetic_num_posts=40",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.max_epochs=2",
    "study.pruner.type=NopPruner",
    "--optimization-metric",
    "val_auc",
]


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiments tree with a completed study (MLflow on) and a failed one."""
    workdir = tmp_path_factory.mktemp("studies")
    done = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--study-name",
        "done",
        "--num-trials",
        "3",
        *SMALL,
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr
    # a model directory that cannot be loaded: every trial fails (a Hub model offline would
    # stop the study before its first trial instead)
    (workdir / "broken-model").mkdir()
    (workdir / "broken-model" / "config.json").write_text('{"model_type": "bert"}')
    failed = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--study-name",
        "broken",
        "--num-trials",
        "1",
        *SMALL,
        "search_space.model_id.choices=[broken-model]",
        "tracking.backend=none",
        cwd=workdir,
    )
    assert failed.returncode == 1, failed.stderr
    return workdir / "experiments"


@pytest.fixture
def tree(studies: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "experiments"
    shutil.copytree(studies, copy, symlinks=True)
    return copy


def study_named(experiments: Path, name: str) -> Path:
    return next(
        d
        for d in experiments.glob("study_*")
        if json.loads((d / "study.json").read_text())["name"] == name
    )


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def best_checkpoint_of(study_dir: Path) -> Path:
    best = json.loads((study_dir / "study.json").read_text())["best"]
    files = list((study_dir.parent / best["trial_id"] / "checkpoints").glob("*.pt"))
    assert len(files) == 1
    return files[0]


def test_evaluate_study_report_and_mlflow(tree: Path, tmp_path: Path) -> None:
    study_dir = study_named(tree, "done")
    result = run_cli("evaluate_study", "--study-dir", str(study_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((study_dir / "evaluation_report.json").read_text())
    assert report["study"]["name"] == "done"
    assert report["study"]["id"] == study_named(tree, "done").name  # study_<id>, trial_<id>
    assert Path(report["checkpoint"]["path"]).parents[1].name == report["best_trial"]["id"]
    assert {"number", "id", "params", "validation_value"} <= set(report["best_trial"])
    assert {"path", "epoch", "sha256"} <= set(report["checkpoint"])
    split = json.loads((study_dir / "split_manifest.json").read_text())
    assert report["test_split"]["posts"] == len(split["post_ids"]["test"])
    assert report["test_split"]["pairs"] == 9 * report["test_split"]["posts"]
    assert {
        "test/criteria_matcher/f1",
        "test/criteria_matcher/auc",
        "test/evidence_binder/char_f1",
    } <= set(report["metrics"])
    assert (
        set(report["per_criterion"]) == set(report["confusion"])
        and len(report["per_criterion"]) == 9
    )
    assert "torch" in report["software"]
    assert "micro_f1" in result.stdout and "per criterion" in result.stdout
    assert "absent" in result.stdout and "present" in result.stdout and "95% CI" in result.stdout
    check_report_context(report, split, best_checkpoint_of(study_dir))

    from mlflow import MlflowClient

    payload = torch.load(report["checkpoint"]["path"], weights_only=True)
    run = MlflowClient(f"sqlite:///{tree / 'mlflow.db'}").get_run(payload["mlflow_run_id"])
    assert "test/criteria_matcher/f1" in run.data.metrics


def check_report_context(report: dict, split: dict, checkpoint: Path) -> None:
    """Baselines, intervals, threshold and protocol are present and consistent."""
    from dataaug_multi_both.metric_names import HEADLINE_METRICS

    names = [f"test/{m}" for m in HEADLINE_METRICS]
    intervals = report["confidence_intervals"]
    assert intervals["resamples"] >= 1000 and intervals["level"] == 0.95
    for name in names:
        value, interval = report["metrics"][name], intervals["metrics"][name]
        if value is None:
            assert interval["low"] is None
        else:
            assert interval["low"] <= value <= interval["high"], name
        for baseline in ("all_absent", "all_present", "train_rate"):
            assert name in report["baselines"][baseline]["metrics"]
    absent = report["baselines"]["all_absent"]["metrics"]
    assert absent["test/criteria_matcher/f1"] == 0.0
    for span_metric in ("exact_match", "char_f1", "char_precision", "char_recall", "token_f1"):
        assert absent[f"test/evidence_binder/{span_metric}"] == 0.0
    assert report["baselines"]["all_present"]["metrics"]["test/criteria_matcher/recall"] > 0
    sizes = report["subsets"]["sizes"]
    assert sizes["posts"] == len(split["post_ids"]["test"]) and sizes["pairs"] == 9 * sizes["posts"]
    assert (
        sizes["positive_pairs"] + sizes["positive_pairs_unaligned"] + sizes["negative_pairs"]
        == sizes["pairs"]
    )
    # the threshold is the one chosen on validation and stored with the checkpoint
    threshold = report["threshold"]
    assert threshold["policy"] == "tuned" and threshold["chosen_on"] == "validation"
    stored = torch.load(checkpoint, weights_only=True)["decision_threshold"]
    assert threshold["value"] == stored["value"] == report["decision_threshold"]
    manifest = json.loads((checkpoint.parent / "manifest.json").read_text())
    record = next(r for r in manifest["records"] if r["file"] == checkpoint.name)
    assert record["decision_threshold"] == stored
    assert all(row["threshold"] == stored["value"] for row in report["per_criterion"].values())
    protocol = report["protocol"]
    assert protocol["split"]["seed"] == 42 and protocol["split"]["method"] == "grouped-stratified"
    assert protocol["split"]["sizes"]["test"]["posts"] == sizes["posts"]
    assert len(protocol["label_set"]) == 9
    assert {"special_case_rows", "conflicting_status_rows", "unaligned_evidence_rows"} <= set(
        protocol["excluded"]
    )
    assert len(report["plots"]) == 2
    for plot in report["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_falls_back_to_the_next_verifying_checkpoint(tree: Path, tmp_path: Path) -> None:
    study_dir = study_named(tree, "done")
    best = best_checkpoint_of(study_dir)
    first = run_cli(  # a directory (trailing /): the report goes inside it
        "evaluate_study",
        "--study-dir",
        str(study_dir),
        "--output-path",
        f"{tmp_path / 'first'}/",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    (tmp_path / "first" / "evaluation_report.json").rename(tmp_path / "a.json")
    assert (tmp_path / "first" / "evaluation_report_reliability.png").is_file()
    # a second retained copy, recorded as slightly worse, then the best one corrupted
    manifest_path = best.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    record = next(r for r in manifest["records"] if r["file"] == best.name)
    shutil.copy(best, best.parent / "epoch_099.pt")
    manifest["records"].append(
        {
            **record,
            "file": "epoch_099.pt",
            "epoch": 99,
            "is_best": False,
            "metric_value": record["metric_value"] - 0.01,
        }
    )
    manifest_path.write_text(json.dumps(manifest))
    data = bytearray(best.read_bytes())
    data[len(data) // 2] ^= 0xFF
    best.write_bytes(bytes(data))
    second = run_cli(
        "evaluate_study",
        "--study-dir",
        str(study_dir),
        "--output-path",
        str(tmp_path / "b.json"),
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert "SHA256" in second.stdout
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert b["checkpoint"]["path"].endswith("epoch_099.pt")
    assert a["metrics"] == b["metrics"]  # the same weights give the same test metrics


def test_evaluate_on_validation_is_labelled_validation(tree: Path, tmp_path: Path) -> None:
    study_dir = study_named(tree, "done")
    out = tmp_path / "val.json"
    result = run_cli(
        "evaluate_study",
        "--study-dir",
        str(study_dir),
        "--test-split",
        "validation",
        "--output-path",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["test_split"]["key"] == "validation"
    assert report["metrics"] and all(k.startswith("val/") for k in report["metrics"])
    assert all(k.startswith("val/") for k in report["confidence_intervals"]["metrics"])
    assert any("tuned on this validation split" in note for note in report["notes"])
    assert "validation metrics next to trivial baselines" in result.stdout

    from mlflow import MlflowClient  # validation numbers are not logged as the run's test

    payload = torch.load(report["checkpoint"]["path"], weights_only=True)
    run = MlflowClient(f"sqlite:///{tree / 'mlflow.db'}").get_run(payload["mlflow_run_id"])
    assert not any(k.startswith("test/") for k in run.data.metrics)


def test_evaluate_exit_codes(tree: Path, tmp_path: Path) -> None:
    done = study_named(tree, "done")
    assert (
        run_cli("evaluate_study", "--study-dir", str(tmp_path / "nope"), cwd=tmp_path).returncode
        == 2
    )
    broken = run_cli(
        "evaluate_study", "--study-dir", str(study_named(tree, "broken")), cwd=tmp_path
    )
    assert broken.returncode == 2 and "no complete trial" in broken.stderr
    bogus = run_cli(
        "evaluate_study", "--study-dir", str(done), "--test-split", "holdout", cwd=tmp_path
    )
    assert bogus.returncode == 4 and "holdout" in bogus.stderr
    best_checkpoint_of(done).unlink()
    missing = run_cli("evaluate_study", "--study-dir", str(done), cwd=tmp_path)
    assert missing.returncode == 3 and "missing" in missing.stderr


def test_list_studies_formats_and_filters(tree: Path, tmp_path: Path) -> None:
    running = tree / "study_20990101-000000-abcdef"
    shutil.copytree(study_named(tree, "done"), running)
    record = json.loads((running / "study.json").read_text())
    record.update(
        study_id="20990101-000000-abcdef", name="more", requested_trials=50, last_exit_code=None
    )
    (running / "study.json").write_text(json.dumps(record))
    (running / "optuna_study.db").unlink()  # counts come from study.json then

    rows = json.loads(
        run_cli(
            "list_studies", "--experiments-dir", str(tree), "--format", "json", cwd=tmp_path
        ).stdout
    )
    status = {r["name"]: r["status"] for r in rows}
    assert status == {"done": "completed", "broken": "failed", "more": "in_progress"}
    assert {"study_id", "name", "trials", "best_metric", "status", "created"} <= set(rows[0])
    done = next(r for r in rows if r["name"] == "done")
    assert done["trials"] == 3 and done["best_metric"] is not None
    # ids are shown as the contract names them, the directory name, also for a record that
    # holds the bare id (as study.json did before)
    assert done["study_id"] == study_named(tree, "done").name
    assert next(r for r in rows if r["name"] == "more")["study_id"] == (
        "study_20990101-000000-abcdef"
    )

    table = run_cli("list_studies", "--experiments-dir", str(tree), cwd=tmp_path).stdout
    for header in ("Study ID", "Name", "Trials", "Best Metric", "Status", "Created"):
        assert header in table
    csv_out = run_cli(
        "list_studies", "--experiments-dir", str(tree), "--format", "csv", cwd=tmp_path
    ).stdout
    assert (
        csv_out.splitlines()[0].startswith("study_id,name,trials,best_metric,status,created")
        and len(csv_out.splitlines()) == 4
    )
    for wanted in ("completed", "in_progress", "failed"):
        only = run_cli(
            "list_studies",
            "--experiments-dir",
            str(tree),
            "--format",
            "json",
            "--filter-status",
            wanted,
            cwd=tmp_path,
        )
        assert [r["status"] for r in json.loads(only.stdout)] == [wanted]
    missing = run_cli("list_studies", "--experiments-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 1


def test_cleanup_dry_run_changes_nothing(tree: Path, tmp_path: Path) -> None:
    (tree / "trial_20990101-000000-abcdef-007").mkdir()  # an orphan to find
    before = tree_hash(tree)
    result = run_cli("cleanup", "--experiments-dir", str(tree), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "would be freed" in result.stdout and "trial_20990101-000000-abcdef-007" in result.stdout
    assert tree_hash(tree) == before


def test_cleanup_finds_planted_orphans_and_keeps_what_is_referenced(
    tree: Path, tmp_path: Path
) -> None:
    study_dir = study_named(tree, "done")
    best = best_checkpoint_of(study_dir)
    checkpoints = best.parent
    temp = checkpoints / ".epoch_005.pt.tmp-123-abcd"
    temp.write_bytes(b"half a checkpoint")
    stray = checkpoints / "epoch_042.pt"
    stray.write_bytes(b"x" * 1000)
    orphan_dir = tree / f"trial_{study_dir.name.removeprefix('study_')}-077"
    (orphan_dir / "logs").mkdir(parents=True)
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"not yours")
    (checkpoints / "link.pt").symlink_to(outside)
    manifest = json.loads((checkpoints / "manifest.json").read_text())
    ghost = {
        **manifest["records"][0],
        "file": "epoch_055.pt",
        "epoch": 55,
        "retained": True,
        "is_best": False,
    }
    manifest["records"].append(ghost)
    (checkpoints / "manifest.json").write_text(json.dumps(manifest))

    result = run_cli("cleanup", "--study-dir", str(study_dir), "--orphaned-only", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not temp.exists() and not stray.exists() and not orphan_dir.exists()
    assert outside.read_bytes() == b"not yours"  # the symlink was not followed
    assert best.is_file()
    fixed = json.loads((checkpoints / "manifest.json").read_text())
    assert next(r for r in fixed["records"] if r["file"] == "epoch_055.pt")["retained"] is False
    assert "preserved" in result.stdout and best.name in result.stdout


def test_cleanup_aggressive_leaves_one_checkpoint_and_evaluation_still_works(
    tree: Path, tmp_path: Path
) -> None:
    # give a standalone run two checkpoints and a non-best study trial a leftover one
    standalone = run_cli(
        "train",
        "--model",
        "tiny-bert",
        "--dataset",
        "synthetic",
        "--max-epochs",
        "2",
        "dataset.synthetic_num_posts=30",
        "dataset.max_length=64",
        "dataset.doc_stride=8",
        "tracking.backend=none",
        "output.trial_id=solo",
        f"output.experiments_dir={tree}",
        cwd=tmp_path,
    )
    assert standalone.returncode == 0, standalone.stderr
    study_dir = study_named(tree, "done")
    before = run_cli(
        "evaluate_study",
        "--study-dir",
        str(study_dir),
        "--output-path",
        str(tmp_path / "1.json"),
        cwd=tmp_path,
    )
    assert before.returncode == 0, before.stderr
    result = run_cli("cleanup", "--study-dir", str(study_dir), "--aggressive", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study_id = json.loads((study_dir / "study.json").read_text())["study_id"]
    assert study_id == study_dir.name
    left = list(tree.glob(f"trial_{study_id.removeprefix('study_')}-*/checkpoints/*.pt"))
    assert len(left) == 1
    after = run_cli(
        "evaluate_study",
        "--study-dir",
        str(study_dir),
        "--output-path",
        str(tmp_path / "2.json"),
        cwd=tmp_path,
    )
    assert after.returncode == 0, after.stderr
    one, two = (json.loads((tmp_path / n).read_text()) for n in ("1.json", "2.json"))
    assert one["metrics"] == two["metrics"]
    assert list((tree / "trial_solo" / "checkpoints").glob("*.pt"))  # outside the study: untouched


def test_cleanup_leaves_a_running_trial_alone(tree: Path, tmp_path: Path) -> None:
    study_dir = study_named(tree, "done")
    best = best_checkpoint_of(study_dir)
    trial_dir = best.parents[1]
    trial_lock.acquire(trial_dir)  # this test process plays the running trial
    try:
        result = run_cli("cleanup", "--study-dir", str(study_dir), "--aggressive", cwd=tmp_path)
    finally:
        trial_lock.release(trial_dir)
    assert result.returncode == 0 and "running" in result.stdout
    assert best.is_file()
    # a lock file left by a process that is gone blocks nothing
    (trial_dir / ".lock").write_text(json.dumps({"host": os.uname().nodename, "pid": 1}))
    result = run_cli("cleanup", "--study-dir", str(study_dir), "--aggressive", cwd=tmp_path)
    assert result.returncode == 0 and "skipped:" not in result.stdout


def test_cleanup_refuses_bad_roots(tmp_path: Path) -> None:
    assert run_cli("cleanup", "--experiments-dir", "/", cwd=tmp_path).returncode == 2
    assert run_cli("cleanup", "--study-dir", str(tmp_path / "nope"), cwd=tmp_path).returncode == 2
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    refused = run_cli("cleanup", "--experiments-dir", str(loop), cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr


def test_clean_artifacts_is_the_contracts_preview_and_deletes_nothing(tmp_path: Path) -> None:
    import subprocess

    shown = subprocess.run(
        ["make", "-n", "clean-artifacts"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "dataaug_multi_both.cli.cleanup --orphaned-only --dry-run" in shown
    nothing = run_cli("cleanup", "--orphaned-only", "--dry-run", cwd=tmp_path)
    assert nothing.returncode == 0 and "nothing to clean" in nothing.stdout
    orphan = tmp_path / "experiments" / "trial_x" / "checkpoints" / "epoch_001.pt"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"not in any manifest")
    preview = run_cli("cleanup", "--orphaned-only", "--dry-run", cwd=tmp_path)  # no scope flag
    assert preview.returncode == 0, preview.stderr
    assert "trial_x" in preview.stdout and "would be freed" in preview.stdout
    assert orphan.read_bytes() == b"not in any manifest"
