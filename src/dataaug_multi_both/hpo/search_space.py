"""The HPO search space: parsed and validated up front (pure), sampled per trial.

Entries of `search_space:` look like
    learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-3}
    batch_size: {type: categorical, choices: [8, 16, 32]}
    trainer.max_grad_norm: {type: uniform, low: 0.5, high: 2.0}
    trainer.gradient_accumulation_steps: {type: int, low: 1, high: 4, step: 1, log: false}
Keys are dotted paths into the training config; a few short names are aliases.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError

ALIASES = {
    "learning_rate": "trainer.learning_rate",
    "batch_size": "trainer.batch_size",
    "model_id": "model.model_id",
    "task_weights.criteria_matcher": "model.task_weights.criteria_matcher",
    "task_weights.evidence_binder": "model.task_weights.evidence_binder",
}
TYPES = ("categorical", "uniform", "loguniform", "int")


@dataclass(frozen=True)
class ParamSpec:
    name: str  # as written in the search space (the Optuna parameter name)
    path: str  # dotted path into the training config
    kind: str  # one of TYPES
    low: float | None = None
    high: float | None = None
    step: int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.kind}{list(self.choices)}"
        extra = f", step {self.step}" if self.step else ""
        return f"{self.kind}[{self.low}, {self.high}{extra}{', log' if self.log else ''}]"


def config_paths(cls: type = TrainConfig, prefix: str = "") -> dict[str, Any]:
    """Every leaf path of the training config schema, with its type."""
    paths: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            paths.update(config_paths(hint, f"{prefix}{f.name}."))
        else:
            paths[f"{prefix}{f.name}"] = hint
    return paths


def parse_search_space(raw: dict[str, Any]) -> list[ParamSpec]:
    """Validate every entry; ConfigError (exit 2) names the first bad one."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(
            "search_space must be a non-empty mapping of config keys to distributions"
        )
    known = config_paths()
    specs = []
    for name, entry in raw.items():
        path = ALIASES.get(name, name)
        if path not in known:
            raise ConfigError(
                f"search_space.{name}: unknown config key {path!r} "
                f"(aliases: {', '.join(ALIASES)}; or a dotted path such as trainer.weight_decay)"
            )
        if path.split(".")[0] in NOT_SEARCHABLE:
            raise ConfigError(
                f"search_space.{name}: {path} cannot be searched (tracking.* decides where "
                "credentials go and output.* where files are written; they are not hyperparameters)"
            )
        specs.append(_parse_entry(name, path, entry))
    return specs


# sections a trial's sampled values may never set (a study's config.yaml is passed around)
NOT_SEARCHABLE = ("tracking", "output")


def _parse_entry(name: str, path: str, entry: Any) -> ParamSpec:
    where = f"search_space.{name}"
    if not isinstance(entry, dict) or "type" not in entry:
        raise ConfigError(f"{where} must be a mapping with a 'type' ({', '.join(TYPES)})")
    kind = entry["type"]
    if kind not in TYPES:
        raise ConfigError(f"{where}.type: {kind!r} is not one of {', '.join(TYPES)}")
    allowed = {
        "categorical": {"type", "choices"},
        "int": {"type", "low", "high", "step", "log"},
    }.get(kind, {"type", "low", "high"})
    extra = sorted(set(entry) - allowed)
    if extra:
        raise ConfigError(f"{where}: unexpected key(s) {', '.join(extra)} for type {kind}")
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices must be a non-empty list")
        return ParamSpec(name, path, kind, choices=tuple(choices))
    low, high = entry.get("low"), entry.get("high")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{where}: low and high must be numbers, got {low!r} and {high!r}")
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if low >= high:
        raise ConfigError(f"{where}: low ({low}) must be < high ({high})")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0, got {low}")
    if kind != "int":
        return ParamSpec(name, path, kind, float(low), float(high), log=kind == "loguniform")
    step, log = entry.get("step", 1), bool(entry.get("log", False))
    if not all(float(v).is_integer() for v in (low, high)) or not isinstance(step, int) or step < 1:
        raise ConfigError(f"{where}: int needs integer low/high and an integer step >= 1")
    if log and (low <= 0 or step != 1):
        raise ConfigError(f"{where}: int with log needs low > 0 and step 1")
    return ParamSpec(name, path, kind, int(low), int(high), step=step, log=log)


def sample(trial: Any, specs: list[ParamSpec]) -> dict[str, Any]:
    """Draw one value per spec from an Optuna trial: {config path: value}."""
    values = {}
    for spec in specs:
        if spec.kind == "categorical":
            value = trial.suggest_categorical(spec.name, list(spec.choices))
        elif spec.kind == "int":
            assert spec.low is not None and spec.high is not None
            value = trial.suggest_int(
                spec.name, int(spec.low), int(spec.high), step=spec.step or 1, log=spec.log
            )
        else:
            assert spec.low is not None and spec.high is not None
            value = trial.suggest_float(spec.name, spec.low, spec.high, log=spec.log)
        values[spec.path] = value
    return values
