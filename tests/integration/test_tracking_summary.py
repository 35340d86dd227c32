"""MLflow as its users expect (issue 19): a trial's run says how the trial ended, each run
has a `best/` summary, `MLFLOW_TRACKING_URI` is honoured, a moved experiments tree keeps its
artifacts, each parameter is logged once. Through the real CLI, against a real local store
and a real `mlflow server`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow import MlflowClient

from dataaug_multi_both.training.reporting import CONTRACT_PARAMS
from tests.integration.conftest import HPO_SMALL, TINY, MlflowServer, read_jsonl, run_cli

pytestmark = pytest.mark.integration

DATA = ["dataset.synthetic_num_posts=30", "dataset.max_length=64", "dataset.doc_stride=8"]
STUDY = [
    "--config",
    HPO_SMALL,
    "--optimization-metric",
    "val_auc",
    "search_space.model_id.choices=[tiny-bert]",
    *DATA,
    "trainer.num_threads=1",
]
METRIC = "val/criteria_matcher/auc"


def runs_of(uri: str) -> list[Any]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("dataaug-multi-both")
    return client.search_runs([experiment.experiment_id])


def local_uri(experiments: Path) -> str:
    return f"sqlite:///{experiments / 'mlflow.db'}"


def best_epoch(values: dict[int, float]) -> int:
    """The earliest epoch of the highest value (what Optuna and the summary table report)."""
    top = max(values.values())
    return min(epoch for epoch, value in values.items() if value == top)


def load_study(experiments: Path) -> optuna.Study:
    (study_dir,) = experiments.glob("study_*")
    record = json.loads((study_dir / "study.json").read_text())
    return optuna.load_study(
        study_name=record["name"], storage=f"sqlite:///{study_dir / 'optuna_study.db'}"
    )


def trial_run(runs: list[Any], number: int) -> Any:
    (run,) = [r for r in runs if r.data.tags.get("trial_number") == str(number)]
    return run


def test_trial_runs_carry_their_optuna_state_and_the_best_epochs_values(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        *STUDY,
        "--num-trials",
        "4",
        "trainer.max_epochs=2",
        "study.pruner.n_startup_trials=1",
        "study.pruner.n_warmup_steps=0",
        "study.sampler.type=RandomSampler",
        # seeded: trial 0 peaks at epoch 1, trial 1 is pruned after it (CPU training is exact)
        "~search_space.learning_rate",
        "+search_space.learning_rate={type: categorical, choices: [3e-4, 1e-9, 1e4]}",
        "trainer.max_grad_norm=0",
        "trainer.warmup_ratio=0",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    experiments = tmp_path / "experiments"
    study, runs = load_study(experiments), runs_of(local_uri(experiments))
    states = {t.state.name for t in study.trials}
    assert {"COMPLETE", "PRUNED"} <= states, states
    for trial in study.trials:
        run = trial_run(runs, trial.number)
        assert run.data.tags["optuna.state"] == trial.state.name
        epoch = best_epoch(trial.intermediate_values)
        assert run.data.metrics["best/epoch"] == epoch
        history = MlflowClient(local_uri(experiments)).get_metric_history(run.info.run_id, METRIC)
        at = {m.step: m.value for m in history}
        assert run.data.metrics[f"best/{METRIC}"] == at[epoch]
        if trial.state.name == "COMPLETE":
            assert run.data.metrics[f"best/{METRIC}"] == trial.value  # what Optuna was told
    parent = [r for r in runs if "trial_number" not in r.data.tags]
    assert len(parent) == 1 and "optuna.state" not in parent[0].data.tags


def test_a_failed_trial_is_tagged_fail(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        *STUDY,
        "--num-trials",
        "1",
        "trainer.max_epochs=1",
        "search_space.learning_rate.low=1000",
        "search_space.learning_rate.high=10000",
        "trainer.max_grad_norm=0",
        "trainer.warmup_ratio=0",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    (run,) = [
        r for r in runs_of(local_uri(tmp_path / "experiments")) if "trial_number" in r.data.tags
    ]
    assert run.data.tags["optuna.state"] == "FAIL" and run.info.status == "FAILED"
    assert not any(key.startswith("best/") for key in run.data.metrics)


def test_best_summary_is_relogged_after_a_resume_and_params_appear_once(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    uri = mlflow_server.uri
    tracking = f"tracking.mlflow_tracking_uri={uri}"
    first = run_cli(
        "train", *TINY, "--max-epochs", "1", *DATA, "output.trial_id=best", tracking, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    checkpoint = tmp_path / "experiments/trial_best/checkpoints/epoch_001.pt"
    resumed = run_cli(
        "train", "--resume-from", str(checkpoint), "--max-epochs", "3", tracking, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    (run,) = [r for r in runs_of(uri) if r.data.tags.get("trial_id") == "trial_best"]
    log = tmp_path / "experiments/trial_best/logs/train.jsonl"
    epochs = {r["epoch"]: r["metrics"] for r in read_jsonl(log) if r["event"] == "epoch_end"}
    metric = "val/criteria_matcher/f1"  # the default optimisation metric
    epoch = best_epoch({e: m[metric] for e, m in epochs.items()})
    summary = {k: v for k, v in run.data.metrics.items() if k.startswith("best/")}
    assert summary["best/epoch"] == epoch
    expected = {
        f"best/{k}": v for k, v in epochs[epoch].items() if k.startswith("val/") and v is not None
    }
    assert summary == pytest.approx({**expected, "best/epoch": epoch})

    params = run.data.params
    assert set(CONTRACT_PARAMS) <= set(params)
    assert not set(CONTRACT_PARAMS.values()) & set(params)  # no `model.model_id` twin
    values = [(k, v) for k, v in params.items() if k.startswith(("trainer.", "model."))]
    assert params["model_id"] == "tiny-bert" and ("model.model_id", "tiny-bert") not in values
    assert len(params) < 70


def test_mlflow_tracking_uri_from_the_environment(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    result = run_cli(
        "train", *TINY, "--max-epochs", "1", *DATA, "output.trial_id=env", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert f"at {mlflow_server.uri} (from MLFLOW_TRACKING_URI)" in result.stdout
    assert [r for r in runs_of(mlflow_server.uri) if r.data.tags["trial_id"] == "trial_env"]
    assert not (tmp_path / "experiments" / "mlflow.db").exists()

    secret = "pa55-Zq9xenv"
    for value, expected in [
        (f"http://user:{secret}@10.255.255.1:5000", "would be sent unencrypted"),
        (f"ftp://user:{secret}@127.0.0.1/x", "invalid value for MLFLOW_TRACKING_URI"),
    ]:
        refused = run_cli(
            "train", *TINY, *DATA, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": value}, timeout=120
        )
        assert refused.returncode == 2, refused.stderr
        assert "MLFLOW_TRACKING_URI" in refused.stderr and expected in refused.stderr
        assert secret not in refused.stdout + refused.stderr


def test_a_moved_experiments_tree_keeps_its_artifacts(tmp_path: Path) -> None:
    trained = run_cli(
        "train", *TINY, "--max-epochs", "1", *DATA, "output.trial_id=moved", cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr
    shutil.move(tmp_path / "experiments", tmp_path / "elsewhere")
    experiments = tmp_path / "elsewhere"
    checkpoint = next((experiments / "trial_moved" / "checkpoints").glob("epoch_*.pt"))
    exported = run_cli(
        "export", "--checkpoint", str(checkpoint), "--output", "out", "--mlflow", cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    assert "experiments tree moved" in exported.stderr
    assert not (tmp_path / "experiments").exists()  # nothing written to the old place

    client = MlflowClient(local_uri(experiments))
    (run,) = runs_of(local_uri(experiments))
    assert run.info.artifact_uri.startswith((experiments / "mlartifacts").resolve().as_uri())
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "train.jsonl", "export"} <= files  # the training's and the export's
    local = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert "tiny-bert" in Path(local).read_text()
