"""Evaluate a study's best trial on the test split of the study's own split manifest."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.manifest import (
    CheckpointManifest,
    CheckpointRecord,
    json_safe,
)
from dataaug_multi_both.checkpointing.policy import rank_best
from dataaug_multi_both.checkpointing.store import load_checkpoint, verifies
from dataaug_multi_both.config.compose import (
    artifact_config,
    compose_dict,
    layered_on_artifact,
    resolve_config_path,
)
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.data.pipeline import feature_cache_dir
from dataaug_multi_both.data.splits import MANIFEST_NAME, SplitManifest
from dataaug_multi_both.errors import (
    CheckpointUnavailableError,
    ConfigError,
    DataAugError,
    ReportWriteError,
    StorageError,
    StudyNotFoundError,
)
from dataaug_multi_both.hpo.study import StudyRecord, trials_home
from dataaug_multi_both.hpo.study_access import load_study_for
from dataaug_multi_both.hpo.trials import best_trial
from dataaug_multi_both.layout import TrialPaths, recorded_trial_name, study_name, trial_name
from dataaug_multi_both.stamps import utc_timestamp
from dataaug_multi_both.training.distributed import (
    SINGLE,
    Distributed,
    process_group,
    torch_device,
)


@dataclass
class ChosenCheckpoint:
    path: Path
    record: CheckpointRecord
    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def best_complete_trial(study: Any) -> Any:
    best = best_trial(study.get_trials(deepcopy=False))
    if best is None:
        raise StudyNotFoundError(f"study {study.study_name!r} has no complete trial to evaluate")
    return best


def trial_dir_near(study_dir: Path, record: StudyRecord, recorded: object) -> Path:
    """The trial directory the study database names (only its name is used), looked up where
    the study's trials live (`trials_home`: next to the study, also in a moved or copied
    tree, or the experiments directory study.json records); never elsewhere."""
    name = recorded_trial_name(recorded)
    if name is None:
        raise CheckpointUnavailableError(
            f"the study database names no trial directory: {recorded!r:.80}"
        )
    beside = trials_home(study_dir, record) / name
    if not beside.is_dir():
        raise CheckpointUnavailableError(f"the best trial's directory {beside} does not exist")
    return beside


def choose_checkpoint(trial_dir: Path) -> ChosenCheckpoint:
    """The trial's best retained checkpoint that verifies (next best, with a warning)."""
    directory = TrialPaths(trial_dir).checkpoints
    manifest = CheckpointManifest.read(directory) if directory.is_dir() else None
    if manifest is None or not manifest.retained():
        raise CheckpointUnavailableError(
            f"the best trial has no retained checkpoint in {directory}"
        )
    by_epoch = {r.epoch: r for r in manifest.retained()}
    ranked = [by_epoch[f.epoch] for f in rank_best(manifest.facts(list(by_epoch.values())))]
    warnings = []
    for record in ranked:
        path = directory / record.file
        if not path.is_file():
            warnings.append(f"{record.file} is missing")
        elif not verifies(path, record.sha256):
            warnings.append(f"{record.file} fails its SHA256 check (corrupted)")
        else:
            try:
                return ChosenCheckpoint(path, record, load_checkpoint(path), warnings)
            except StorageError as exc:
                warnings.append(exc.message)
    raise CheckpointUnavailableError(
        f"no checkpoint of {trial_dir.name} verifies: {'; '.join(warnings)}"
    )


def software_versions() -> dict[str, str]:
    import optuna
    import torch
    import transformers

    from dataaug_multi_both import __version__

    return {
        "dataaug_multi_both": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "optuna": optuna.__version__,
    }


def evaluate_study(
    study_dir: Path, output_path: Path, split_name: str, console: Any, dist: Distributed = SINGLE
) -> dict[str, Any]:
    """Evaluate the best trial's checkpoint; under torchrun the ranks share the inference
    (same metrics as one process) and rank 0 writes the report and talks to MLflow."""
    from dataaug_multi_both.hpo.evaluation_report import (
        add_average_precision,
        plot_paths,
        report_context,
        write_plots_for,
    )
    from dataaug_multi_both.training.evaluation import evaluate_checkpoint

    started = time.monotonic()
    record, study = load_study_for(study_dir)
    best = best_complete_trial(study)
    trial_dir = trial_dir_near(study_dir, record, best.user_attrs.get("trial_dir"))
    chosen = choose_checkpoint(trial_dir)
    for warning in chosen.warnings:
        console.print(f"warning: {warning}; using the next best checkpoint", highlight=False)
    config = trial_config(trial_dir)
    split = SplitManifest.read(study_dir / MANIFEST_NAME)
    device = dist.device(torch_device("auto"))
    cache = feature_cache_dir(config.dataset, trial_dir.parent)
    with process_group(dist, device, config.trainer.ddp_timeout_sec):
        result = evaluate_checkpoint(config, chosen.payload, split, split_name, cache, device, dist)
    add_average_precision(result)
    report = {
        "study": {"id": study_name(record.study_id), "name": record.name, "dir": str(study_dir)},
        "best_trial": {
            "number": best.number,
            "id": (
                trial_name(str(best.user_attrs["trial_id"]))
                if "trial_id" in best.user_attrs
                else None
            ),
            "params": best.params,
            "validation_value": best.value,
            "optimization_metric": record.optimization_metric,
        },
        "checkpoint": {
            "path": str(chosen.path),
            "epoch": chosen.record.epoch,
            "sha256": chosen.record.sha256,
            "kind": chosen.record.kind,
            "fallback_warnings": chosen.warnings,
        },
        "test_split": {"name": split_name, "key": result.split_key, **result.sizes},
        "metrics": result.metrics,
        "per_criterion": result.details["per_criterion"],
        "confusion": result.details["confusion"],
        "auc_skipped": result.details["auc_skipped"],
        "decision_threshold": result.threshold.uniform_value(),  # null: one per criterion
        **report_context(result, config),
        "software": software_versions(),
        "created": utc_timestamp(),
        "duration_sec": round(time.monotonic() - started, 2),
    }
    if dist.is_main:
        report["plots"] = [str(p) for p in plot_paths(output_path)]
        try:
            atomic_write_text(
                output_path, json.dumps(json_safe(report), indent=1, default=str, allow_nan=False)
            )
            write_plots_for(result, output_path)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ReportWriteError(f"cannot write the report {output_path}: {reason}") from exc
        if result.split_key == "test":  # the run's curves hold validation; test is logged once
            _log_to_mlflow(config, trial_dir, chosen.payload, result.metrics, console)
    return report


def trial_config(trial_dir: Path) -> TrainConfig:
    """The trial's configuration, read as data, with the user's own credential routing (from
    configs/train.yaml here, else the bundled defaults): a trial directory must not decide
    where credentials are sent. A config that does not parse: the checkpoint cannot be used."""
    try:
        data = artifact_config(TrialPaths(trial_dir).config)
        yours = compose_dict(resolve_config_path(None, "train.yaml"), [])
        return TrainConfig.from_dict(layered_on_artifact(data, yours, []))
    except ConfigError as exc:
        raise CheckpointUnavailableError(f"the best trial's configuration: {exc.message}") from None


def _log_to_mlflow(
    config: TrainConfig,
    trial_dir: Path,
    payload: dict[str, Any],
    metrics: dict[str, float | None],
    console: Any,
) -> None:
    run_id = payload.get("mlflow_run_id")
    if config.tracking.backend != "mlflow" or not run_id:
        return
    from dataaug_multi_both.tracking.mlflow_logger import RunTracker

    try:
        tracker = RunTracker(config.tracking, trial_dir.parent)
        if tracker.run_exists(run_id):
            tracker.run_id = run_id
            tracker.log_metrics(0, metrics)
    except DataAugError as exc:  # the report is written; MLflow is a copy of it
        console.print(f"warning: test metrics not logged to MLflow: {exc.message}", highlight=False)
