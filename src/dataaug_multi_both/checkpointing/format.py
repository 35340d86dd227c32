"""What a checkpoint file holds. Every value is a plain type or a tensor, so
`torch.load(path, weights_only=True)` reads it without unpickling arbitrary objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from dataaug_multi_both.checkpointing.policy import RESUME, WEIGHTS_ONLY

FORMAT_VERSION = "format_version"
KIND = "kind"  # RESUME | WEIGHTS_ONLY
EPOCH = "epoch"  # epochs finished
GLOBAL_STEP = "global_step"  # optimizer steps taken
MODEL = "model"  # state_dict of the dual-head model (unwrapped)
MODEL_ARGS = "model_args"  # what rebuilds the architecture: model_id, revision, encoder config
OPTIMIZER = "optimizer"
SCHEDULER = "scheduler"
SCALER = "scaler"
RNG = "rng"  # python / numpy / torch / cuda RNG states
MLFLOW_RUN_ID = "mlflow_run_id"
CONFIG = "config"  # the resolved training config, plain dict
CONFIG_HASH = "config_hash"  # hash of the training-relevant part of CONFIG
METRICS = "metrics"  # this epoch's metrics
TRIAL_ID = "trial_id"
TRIAL_DIR = "trial_dir"
WEIGHTS_DTYPE = "weights_dtype"  # dtype the weights were stored in ("float32" by default)
# the matcher's decision threshold(s) chosen on this epoch's validation predictions (plain
# dict: policy, source, value, per_criterion); absent in checkpoints written before it existed
DECISION_THRESHOLD = "decision_threshold"
# the objective (higher is better) of every validation so far, for early stopping
EVALUATIONS = "evaluations"
# only in a mid-epoch checkpoint: batches done in the epoch in progress and its running sums
EPOCH_POSITION = "epoch_position"

CURRENT_FORMAT = 1
RESUME_ONLY = (OPTIMIZER, SCHEDULER, SCALER, RNG)


def slim_payload(payload: dict[str, Any], dtype: torch.dtype | None) -> dict[str, Any]:
    """A weights-only copy of a resume payload; floating weights cast to `dtype` if given."""
    import torch

    slim = {k: v for k, v in payload.items() if k not in RESUME_ONLY}
    slim[KIND] = WEIGHTS_ONLY
    if dtype is not None:
        slim[MODEL] = {
            k: v.to(dtype) if torch.is_floating_point(v) else v for k, v in payload[MODEL].items()
        }
        slim[WEIGHTS_DTYPE] = str(dtype).removeprefix("torch.")
    return slim


def is_resume(payload: dict[str, Any]) -> bool:
    return payload.get(KIND) == RESUME and all(k in payload for k in RESUME_ONLY)


def to_cpu(value: Any) -> Any:
    """A copy of every tensor in `value` (nested dicts and lists) on the CPU, detached."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_cpu(v) for v in value]
    return value
