"""A study on disk: its directory, `study.json`, its Optuna study, sampler and pruner.

Layout: `experiments/study_{id}/` holds `optuna_study.db` (the default storage),
`study.json`, `logs/hpo.jsonl`, the resolved `config.yaml`, the shared
`split_manifest.json` and `plots/`; each trial is `experiments/trial_{study_id}-{NNN}/`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.errors import ConfigError, StudyStorageError
from dataaug_multi_both.hpo.config import PrunerConfig, SamplerConfig
from dataaug_multi_both.hpo.search_space import ParamSpec
from dataaug_multi_both.layout import STUDY_FILE, STUDY_PREFIX, study_name
from dataaug_multi_both.stamps import new_run_id, utc_timestamp
from dataaug_multi_both.untrusted import read_json, require_mapping

PREFIX = STUDY_PREFIX
# what new_study_id makes: local time + 6 hex digits; safe in a path and in a glob
STUDY_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}")
_SCALAR = (str, int, float, bool, type(None))


def new_study_id() -> str:
    return new_run_id()


def valid_study_id(value: object, where: str = "the study id") -> str:
    """`value` when it is a study id as `new_study_id` makes them; StudyStorageError
    otherwise (ids read from study.json or the study database become directory names and
    trial globs, and whatever they name may be deleted)."""
    if isinstance(value, str) and STUDY_ID.fullmatch(value):
        return value
    raise StudyStorageError(
        f"{where} is {str(value)[:40]!r}, not a study id like 20260101-120000-abc123"
    )


def stored_identity(
    attrs: Mapping[str, Any], resumed: tuple[str, Path] | None = None
) -> tuple[str, Path]:
    """(study id, study directory) from the user attributes the study's first worker stored
    in the Optuna database, checked: the id as `valid_study_id`, the directory an absolute
    path without `..`; StudyStorageError otherwise. A `resumed` study (id and directory of the
    study.json found) must be the one the database names, and stays where it is now."""
    study_id = valid_study_id(attrs.get("study_id"), "the study database's study_id")
    if resumed is not None:
        if study_id != resumed[0]:
            raise StudyStorageError(
                f"the study database in {resumed[1]} belongs to study {study_id}, not to "
                f"{resumed[0]} (its study.json): refusing to resume it"
            )
        return resumed
    raw = attrs.get("study_dir")
    study_dir = Path(raw) if isinstance(raw, str) and raw and "\0" not in raw else None
    if study_dir is None or not study_dir.is_absolute() or ".." in study_dir.parts:
        raise StudyStorageError(
            f"the study database's study_dir is {str(raw)[:80]!r}, not an absolute directory"
        )
    return study_id, study_dir


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
    experiments_dir: str = ""  # where the trials go (output.experiments_dir, absolute)

    def write(self, study_dir: Path) -> None:
        """study.json names the study as users see it (`study_{id}`, its directory name);
        `read` takes the bare id of older records too."""
        self.updated = utc_timestamp()
        data = {**asdict(self), "study_id": study_name(self.study_id)}
        atomic_write_text(study_dir / STUDY_FILE, json.dumps(data, indent=1))

    @classmethod
    def read(cls, study_dir: Path) -> StudyRecord:
        """study.json, checked field by field; StudyStorageError (one line naming the file)
        for anything that is not a record we wrote: unreadable, not JSON, nested too deeply,
        a missing or wrong-typed field, a study id that is not one. Unknown keys are
        ignored (a newer version's)."""
        path = study_dir / STUDY_FILE
        data = require_mapping(read_json(path, StudyStorageError), path, StudyStorageError)
        for name, kinds in _FIELD_TYPES.items():
            if name not in data and name in _REQUIRED:
                raise StudyStorageError(f"{path} lacks {name!r}")
            value = data.get(name)
            if name in data and (not isinstance(value, kinds) or isinstance(value, bool)):
                expected = " or ".join(k.__name__ for k in kinds)
                raise StudyStorageError(f"{path}: {name} is {type(value).__name__}, not {expected}")
        problem = _nested_problem(data.get("counts"), data.get("best"))
        if problem:
            raise StudyStorageError(f"{path}: {problem}")
        study_id = valid_study_id(data["study_id"].removeprefix(PREFIX), f"{path}: study_id")
        data = {**data, "study_id": study_id}
        return cls(**{k: v for k, v in data.items() if k in _FIELD_TYPES})


# the types study.json may hold per field (bools are never valid: no field is a flag)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "study_id": (str,),
    "name": (str,),
    "created": (str,),
    "storage": (str,),
    "requested_trials": (int,),
    "optimization_metric": (str,),
    "direction": (str,),
    "config_hash": (str,),
    "status": (str,),
    "last_exit_code": (int, type(None)),
    "counts": (dict,),
    "best": (dict, type(None)),
    "mlflow_parent_run_id": (str, type(None)),
    "footprint_bytes": (int,),
    "updated": (str,),
    "experiments_dir": (str,),
}
_REQUIRED = [
    f.name for f in fields(StudyRecord) if f.default is MISSING and f.default_factory is MISSING
]


def _nested_problem(counts: Any, best: Any) -> str | None:
    """What is wrong with study.json's two nested fields (counts: state -> number; best: a
    trial's number, id, value and flat params), or None."""
    if counts is not None and not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts.values()
    ):
        return "counts holds a value that is not a number of trials"
    if isinstance(best, dict):
        value, params = best.get("value"), best.get("params", {})
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "best.value is not a number"
        if not isinstance(params, dict) or not all(isinstance(v, _SCALAR) for v in params.values()):
            return "best.params is not a mapping of names to values"
    return None


def study_status(finished: int, requested: int, last_exit_code: int | None) -> str:
    """completed: the requested trials finished; failed: the last run ended in an error exit
    code; in_progress: trials are running or remain to be run."""
    if finished >= requested:
        return "completed"
    if last_exit_code not in (None, 0):
        return "failed"
    return "in_progress"


def trials_home(study_dir: Path, record: StudyRecord) -> Path:
    """Where the study's trial directories are: next to the study when any of them is there
    (the default layout, and a moved or copied tree), else the experiments directory recorded
    in study.json (a `--study-dir` outside `output.experiments_dir`) when it is an existing
    absolute directory that is not a symlink. Only `trial_{study_id}-NNN` entries of it are
    ever looked at."""
    beside = study_dir.parent
    if any(beside.glob(f"trial_{record.study_id}-*")):
        return beside
    recorded = Path(record.experiments_dir) if record.experiments_dir else None
    if (
        recorded is not None
        and "\0" not in record.experiments_dir
        and recorded.is_absolute()
        and ".." not in recorded.parts
        and recorded.is_dir()
        and not recorded.is_symlink()
    ):
        return recorded
    return beside


def study_dirs(experiments_dir: Path) -> list[Path]:
    """The `study_*` directories holding a study.json (readable or not), sorted."""
    if not experiments_dir.is_dir():
        return []
    return sorted(p for p in experiments_dir.glob(f"{PREFIX}*") if (p / STUDY_FILE).is_file())


def readable_studies(experiments_dir: Path) -> tuple[list[tuple[Path, StudyRecord]], list[str]]:
    """The studies whose study.json reads, and one line per study.json that does not (one
    broken or planted file must not hide the other studies)."""
    studies, problems = [], []
    for directory in study_dirs(experiments_dir):
        try:
            studies.append((directory, StudyRecord.read(directory)))
        except StudyStorageError as exc:
            problems.append(exc.message)
    return studies, problems


def find_study_dir(experiments_dir: Path, key: str) -> Path:
    """A study by id (with or without `study_`) or by name; StudyStorageError if none (it
    names the study.json files that could not be read, if any)."""
    wanted_id = key.removeprefix(PREFIX)
    studies, problems = readable_studies(experiments_dir)
    by_name = []
    for directory, record in studies:
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
    unreadable = f"; {len(problems)} study.json unreadable, e.g. {problems[0]}" if problems else ""
    raise StudyStorageError(
        f"no study {key!r} under {experiments_dir} (looked for ids and names in study.json"
        f"{unreadable})"
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
