"""A study on disk: its directory, `study.json`, its Optuna study, sampler and pruner.

Layout: `experiments/study_{id}/` holds `optuna_study.db` (the default storage),
`study.json`, `logs/hpo.jsonl`, the resolved `config.yaml`, the shared
`split_manifest.json` and `plots/`; each trial is `experiments/trial_{study_id}-{NNN}/`.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.errors import ConfigError, StudyStorageError
from dataaug_multi_both.hpo.config import PrunerConfig, SamplerConfig
from dataaug_multi_both.hpo.search_space import ParamSpec
from dataaug_multi_both.layout import STUDY_FILE
from dataaug_multi_both.stamps import new_run_id, utc_timestamp

PREFIX = "study_"


def new_study_id() -> str:
    return new_run_id()


@dataclass
class StudyRecord:
    """`study.json`: what `list_studies`, `evaluate_study` and a resume read."""

    study_id: str
    name: str
    created: str
    storage: str  # without password
    requested_trials: int
    optimization_metric: str
    direction: str
    config_hash: str
    status: str = "in_progress"  # in_progress | completed | failed
    last_exit_code: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    mlflow_parent_run_id: str | None = None
    footprint_bytes: int = 0
    updated: str = ""

    def write(self, study_dir: Path) -> None:
        self.updated = utc_timestamp()
        atomic_write_text(study_dir / STUDY_FILE, json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, study_dir: Path) -> StudyRecord:
        path = study_dir / STUDY_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError) as exc:
            raise StudyStorageError(f"cannot read {path}: {exc}") from exc


def study_status(finished: int, requested: int, last_exit_code: int | None) -> str:
    """completed: the requested trials finished; failed: the last run ended in an error exit
    code; in_progress: trials are running or remain to be run."""
    if finished >= requested:
        return "completed"
    if last_exit_code not in (None, 0):
        return "failed"
    return "in_progress"


def study_dirs(experiments_dir: Path) -> list[Path]:
    if not experiments_dir.is_dir():
        return []
    return sorted(p for p in experiments_dir.glob(f"{PREFIX}*") if (p / STUDY_FILE).is_file())


def find_study_dir(experiments_dir: Path, key: str) -> Path:
    """A study by id (with or without `study_`) or by name; StudyStorageError if none."""
    wanted_id = key.removeprefix(PREFIX)
    by_name = []
    for directory in study_dirs(experiments_dir):
        record = StudyRecord.read(directory)
        if record.study_id == wanted_id:
            return directory
        if record.name == key:
            by_name.append(directory)
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise StudyStorageError(
            f"several studies are named {key!r}; resume by id: {[p.name for p in by_name]}"
        )
    raise StudyStorageError(
        f"no study {key!r} under {experiments_dir} (looked for ids and names in study.json)"
    )


def _named(module: Any, name: str, kind: str) -> Any:
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        known = sorted(n for n in dir(module) if n.endswith(kind) and not n.startswith("Base"))
        raise ConfigError(f"unknown {kind.lower()} {name!r}; Optuna offers: {', '.join(known)}")
    return cls


def _accepted(cls: type, candidates: dict[str, Any]) -> dict[str, Any]:
    parameters = inspect.signature(cls).parameters
    return {k: v for k, v in candidates.items() if k in parameters and v is not None}


def make_sampler(config: SamplerConfig, specs: list[ParamSpec]) -> Any:
    import optuna

    cls = _named(optuna.samplers, config.type, "Sampler")
    kwargs = _accepted(cls, {"seed": config.seed})
    if config.type == "GridSampler":
        if any(s.kind != "categorical" for s in specs):
            raise ConfigError("GridSampler needs a search space of categorical entries only")
        kwargs["search_space"] = {s.name: list(s.choices) for s in specs}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build sampler {config.type}: {exc}") from exc


def make_pruner(config: PrunerConfig) -> Any:
    import optuna

    cls = _named(optuna.pruners, config.type, "Pruner")
    kwargs = _accepted(
        cls, {"n_startup_trials": config.n_startup_trials, "n_warmup_steps": config.n_warmup_steps}
    )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build pruner {config.type}: {exc}") from exc
