"""`export`: a directory that works without this project's checkpoints and offline: the
encoder and tokenizer (`save_pretrained`, safetensors), the heads (`heads.safetensors`), the
settings (`dataaug_config.json`) and a model card (`README.md`). Written beside the target
under a temporary name and renamed when complete."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.discard import discard_staging
from dataaug_multi_both.errors import ConfigError, OutputWriteError, first_line
from dataaug_multi_both.serving.model_card import model_card
from dataaug_multi_both.serving.model_source import (
    EXPORT_CONFIG,
    HEADS_FILE,
    LoadedModel,
    export_settings,
    json_text,
)


def export_model(loaded: LoadedModel, output: Path) -> int:
    """Write the export of `loaded` to `output` (which must not exist, or be empty);
    returns its size in bytes."""
    from safetensors.torch import save_file

    if not output.name:
        raise ConfigError(f"--output {output}: give the directory to create")
    if output.is_symlink() or (output.exists() and (not output.is_dir() or any(output.iterdir()))):
        raise ConfigError(f"--output {output} exists and is not an empty directory")
    card = model_card(loaded)  # before anything is written: a bad report stops here
    try:  # a directory of our own, never one that was there
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    except OSError as exc:
        raise OutputWriteError(
            f"cannot write {output}: {exc.strerror or first_line(exc)}"
        ) from None
    done = False
    try:
        model = loaded.model
        model.encoder.save_pretrained(str(staging), safe_serialization=True)
        loaded.tokenizer.save_pretrained(str(staging))
        heads = {
            **{f"criteria_matcher.{k}": v for k, v in model.criteria_matcher.state_dict().items()},
            **{f"evidence_binder.{k}": v for k, v in model.evidence_binder.state_dict().items()},
        }
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in heads.items()}, str(staging / HEADS_FILE)
        )
        atomic_write_text(staging / EXPORT_CONFIG, json_text(export_settings(loaded)))
        atomic_write_text(staging / "README.md", card)
        _shareable(staging)
        os.replace(staging, output)  # rename(2) replaces an empty directory
        done = True
    except OSError as exc:
        raise OutputWriteError(
            f"cannot write {output}: {exc.strerror or first_line(exc)}"
        ) from None
    finally:
        if not done:
            discard_staging(staging)
    return sum(p.stat().st_size for p in output.rglob("*") if p.is_file())


ARTIFACT_PATH = "export"


def log_export(loaded: LoadedModel, output: Path, register: str | None) -> str:
    """The export as an artifact of the trial's MLflow run (in the store *your* config names:
    a trial's recorded tracking settings never decide where credentials go), and a new
    version of the registered model `register`; a line saying what was done."""
    from dataaug_multi_both.errors import TrackingError
    from dataaug_multi_both.hpo.evaluate import trial_config
    from dataaug_multi_both.tracking.mlflow_logger import RunTracker

    if loaded.trial_dir is None or not loaded.mlflow_run_id:
        raise ConfigError("--mlflow: the checkpoint records no MLflow run to log the export to")
    config = trial_config(loaded.trial_dir)
    if config.tracking.backend != "mlflow":
        raise ConfigError("--mlflow: tracking.backend is none in your configuration")
    tracker = RunTracker(config.tracking, loaded.trial_dir.parent)
    if not tracker.run_exists(loaded.mlflow_run_id):
        raise TrackingError(
            f"MLflow run {loaded.mlflow_run_id} is not in {tracker.display_uri}: nothing to log to"
        )
    if not tracker.owns_artifact_location(loaded.mlflow_run_id):
        raise TrackingError(
            f"MLflow run {loaded.mlflow_run_id} stores its artifacts outside this store "
            f"({tracker.display_uri}); refusing to upload the export there"
        )
    tracker.run_id = loaded.mlflow_run_id
    tracker.log_directory(output, ARTIFACT_PATH)
    done = (
        f"logged to MLflow run {loaded.mlflow_run_id} ({tracker.display_uri}) as {ARTIFACT_PATH}/"
    )
    if register:
        version = tracker.register(register, ARTIFACT_PATH)
        done += f"; registered as {register} version {version}"
    return done


def _shareable(directory: Path) -> None:
    """Files readable as the user's umask allows (safetensors writes some as 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)
    directory.chmod(0o777 & ~umask)
