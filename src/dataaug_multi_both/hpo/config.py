"""The HPO configuration: `study:` + `search_space:` on top of the inherited training config.

`configs/hpo.yaml` starts with `defaults: [train, _self_]`, so everything of `train.yaml` is
there too; the training part is validated by the training schema, the rest here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.config.compose import (
    apply_values,
    artifact_config,
    compose_dict,
    layered_on_artifact,
    resolve_config_path,
)
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.config.suggest import schema_keys
from dataaug_multi_both.config.validation import build, require
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.hpo.search_space import ParamSpec, parse_search_space
from dataaug_multi_both.metric_names import resolve_metric_name


@dataclass(frozen=True)
class SamplerConfig:
    type: str = "TPESampler"
    seed: int | None = 42

    def validate(self, prefix: str) -> None:
        require(
            self.type.endswith("Sampler"),
            f"{prefix}.type",
            self.type,
            "an Optuna sampler class name",
        )


@dataclass(frozen=True)
class PrunerConfig:
    type: str = "MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 1

    def validate(self, prefix: str) -> None:
        require(
            self.type.endswith("Pruner"), f"{prefix}.type", self.type, "an Optuna pruner class name"
        )
        require(
            self.n_startup_trials >= 0, f"{prefix}.n_startup_trials", self.n_startup_trials, ">= 0"
        )
        require(self.n_warmup_steps >= 0, f"{prefix}.n_warmup_steps", self.n_warmup_steps, ">= 0")


@dataclass(frozen=True)
class StudyConfig:
    name: str | None = None
    num_trials: int = 100
    optimization_metric: str = "val/criteria_matcher/f1"
    direction: str = "maximize"
    storage: str | None = None  # None = sqlite:///{study_dir}/optuna_study.db
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    keep_top_k_trials: int = 1
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats
    grace_period: int = 30  # seconds without heartbeat after which a trial is stale
    connection_retry_sec: float = 60.0  # bounded wait for the storage to come back

    def validate(self, prefix: str) -> None:
        require(
            1 <= self.num_trials <= 1_000_000, f"{prefix}.num_trials", self.num_trials, "1..1000000"
        )
        require(
            self.direction == "maximize",
            f"{prefix}.direction",
            self.direction,
            "maximize only (every optimization metric is higher-is-better)",
        )
        require(
            self.keep_top_k_trials >= 1,
            f"{prefix}.keep_top_k_trials",
            self.keep_top_k_trials,
            ">= 1",
        )
        require(
            self.heartbeat_interval >= 1,
            f"{prefix}.heartbeat_interval",
            self.heartbeat_interval,
            ">= 1",
        )
        require(
            self.grace_period > self.heartbeat_interval,
            f"{prefix}.grace_period",
            self.grace_period,
            f"> study.heartbeat_interval ({self.heartbeat_interval})",
        )
        require(
            0 <= self.connection_retry_sec <= 3600,
            f"{prefix}.connection_retry_sec",
            self.connection_retry_sec,
            "0..3600",
        )
        resolve_metric_name(self.optimization_metric)


@dataclass(frozen=True)
class HpoConfig:
    study: StudyConfig
    search_space: list[ParamSpec]
    search_space_raw: dict[str, Any]
    train: TrainConfig  # the base every trial starts from

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": dataclasses.asdict(self.study),
            "search_space": self.search_space_raw,
            **self.train.to_dict(),
        }


def flat_search_space(raw: Any) -> Any:
    """`search_space` with nested entries under their dotted name: Hydra reads the override
    `+search_space.trainer.weight_decay={type: uniform, ...}` as {trainer: {weight_decay:
    {...}}}; the file writes `trainer.weight_decay: {...}`. Both are the same entry (a later
    one replaces an earlier one of the same name). Anything but a mapping is left as it is
    for `parse_search_space` to refuse."""
    if not isinstance(raw, dict):
        return raw
    flat: dict[str, Any] = {}
    for name, entry in raw.items():
        if isinstance(entry, dict) and entry and "type" not in entry:
            nested = flat_search_space(entry)
            if all(isinstance(v, dict) for v in nested.values()):
                flat.update({f"{name}.{key}": value for key, value in nested.items()})
                continue
        flat[str(name)] = entry
    return flat


def load_hpo_config(
    config: str | None,
    overrides: list[str],
    study_values: dict[str, Any],
    seed: int | None,
    artifact: Path | None = None,
) -> HpoConfig:
    """Compose `configs/hpo.yaml` (or `config`), apply flags, validate everything up front.
    With `artifact` (a study's config.yaml), continue that configuration: its settings, the
    user's `tracking.*` and overrides (`layered_on_artifact`)."""
    known = [*schema_keys(TrainConfig), *schema_keys(StudyConfig, "study.")]
    data = compose_dict(resolve_config_path(config, "hpo.yaml"), overrides, known)
    if artifact is not None:
        data = layered_on_artifact(artifact_config(artifact), data, overrides)
    study_values = {f"study.{k}": v for k, v in study_values.items()}
    study_raw = apply_values({"study": data.pop("study", {}) or {}}, study_values)["study"]
    if seed is not None:
        study_raw.setdefault("sampler", {})
        study_raw["sampler"] = {**study_raw["sampler"], "seed": seed}
    search_raw = data.pop("search_space", None)
    if search_raw is None:
        raise ConfigError("the HPO config has no search_space section")
    search_raw = flat_search_space(search_raw)
    study = build(StudyConfig, study_raw, "study")
    for node, prefix in (
        (study.sampler, "study.sampler"),
        (study.pruner, "study.pruner"),
        (study, "study"),
    ):
        node.validate(prefix)
    metric = resolve_metric_name(study.optimization_metric)
    study = dataclasses.replace(study, optimization_metric=metric)
    data.setdefault("trainer", {})["optimization_metric"] = metric
    train = TrainConfig.from_dict(data)
    train = dataclasses.replace(train, seeds=train.seeds.filled(42 if seed is None else seed))
    return HpoConfig(study, parse_search_space(search_raw), search_raw, train)
