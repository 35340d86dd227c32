"""Augmentation in real runs: an HPO study searching `augmentation.*` keys, and what a
training run logs (train.jsonl, MLflow params and the per-epoch count)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.integration.conftest import TINY, read_jsonl, run_cli

pytestmark = pytest.mark.integration


def test_a_study_searches_augmentation_keys(tmp_path: Path) -> None:
    config = tmp_path / "aug.yaml"
    config.write_text(
        "defaults:\n  - hpo_small\n  - _self_\n"
        "search_space:\n"
        "  model_id: {type: categorical, choices: [tiny-bert]}\n"
        "  augmentation.sentence_delete_prob: {type: uniform, low: 0.0, high: 0.3}\n"
        "  augmentation.evidence_synonym_prob: {type: uniform, low: 0.0, high: 0.5}\n"
        "  augmentation.criterion_paraphrase_prob: {type: categorical, choices: [0.0, 0.5]}\n"
    )
    result = run_cli(
        "hpo",
        "--config",
        str(config),
        "--study-name",
        "aug",
        "--num-trials",
        "3",
        "dataset.synthetic_num_posts=30",
        "dataset.max_length=64",
        "dataset.doc_stride=8",
        "tracking.backend=none",
        "study.pruner.type=NopPruner",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study_dir = next((tmp_path / "experiments").glob("study_*"))
    study = optuna.load_study(
        study_name="aug", storage=f"sqlite:///{study_dir / 'optuna_study.db'}"
    )
    assert len(study.trials) == 3
    for trial in study.trials:
        assert "augmentation.sentence_delete_prob" in trial.params
        trial_dir = Path(trial.user_attrs["trial_dir"])
        events = read_jsonl(trial_dir / "logs" / "train.jsonl")
        augmented = [e for e in events if e["event"] == "augmentation"]
        assert [e["epoch"] for e in augmented] == [1, 2]
        assert all(e["stats"]["posts"] > 0 for e in augmented)


def test_augmentation_settings_and_counts_reach_mlflow(tmp_path: Path) -> None:
    result = run_cli(
        "train",
        *TINY,
        "--max-epochs",
        "2",
        "dataset.synthetic_num_posts=30",
        "dataset.max_length=64",
        "dataset.doc_stride=8",
        "augmentation.synonym_prob=0.3",
        "augmentation.sentence_shuffle_prob=0.5",
        "output.trial_id=aug",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'experiments' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dataaug-multi-both")
    run = client.search_runs([experiment.experiment_id])[0]
    assert run.data.params["augmentation.synonym_prob"] == "0.3"
    assert run.data.params["augmentation.word_swap_prob"] == "0.0"
    history = client.get_metric_history(run.info.run_id, "train/augmentation/augmented_examples")
    assert [m.step for m in history] == [1, 2] and all(m.value > 0 for m in history)
    events = read_jsonl(tmp_path / "experiments" / "trial_aug" / "logs" / "train.jsonl")
    logged = {
        e["epoch"]: e["stats"]["augmented_examples"] for e in events if e["event"] == "augmentation"
    }
    assert logged == {m.step: int(m.value) for m in history}
