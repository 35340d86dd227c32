"""Which study a worker runs: its id, name and directory (new, joined by name, or resumed),
what is written next to it (config without secrets, study.json), and its shared split."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.config.compose import config_fingerprint
from dataaug_multi_both.config.public import public_config
from dataaug_multi_both.data.pipeline import split_and_pairs
from dataaug_multi_both.data.splits import MANIFEST_NAME, SplitManifest
from dataaug_multi_both.errors import StudyStorageError
from dataaug_multi_both.hpo.config import HpoConfig
from dataaug_multi_both.hpo.storage import redact_url
from dataaug_multi_both.hpo.study import (
    STUDY_FILE,
    StudyRecord,
    find_study_dir,
    new_study_id,
    readable_studies,
)
from dataaug_multi_both.stamps import utc_timestamp
from dataaug_multi_both.training.baselines import baseline_scores
from dataaug_multi_both.training.distributed import SINGLE, Distributed


@dataclass
class StudyOptions:
    study_name: str | None = None
    study_dir: Path | None = None
    resume: str | None = None  # study id (with or without study_) or name
    console: Console = field(default_factory=Console)
    dist: Distributed = SINGLE  # under torchrun: each trial is one data-parallel job


def resolve_identity(
    hpo: HpoConfig, options: StudyOptions, experiments_dir: Path
) -> tuple[str, str, Path]:
    """(study id, name, directory): the resumed study's, an existing study of the same name
    (another worker, or an earlier run), or a new one."""
    if options.resume:
        study_dir = options.study_dir or find_study_dir(experiments_dir, options.resume)
        existing = StudyRecord.read(study_dir)
        return existing.study_id, existing.name, study_dir
    name = options.study_name or hpo.study.name
    joined = existing_by_name(name, options.study_dir, experiments_dir) if name else None
    if joined is not None:
        study_id = StudyRecord.read(joined).study_id
        return study_id, name or f"study-{study_id}", joined
    study_id = new_study_id()
    study_dir = options.study_dir or experiments_dir / f"study_{study_id}"
    return study_id, name or f"study-{study_id}", study_dir


def existing_by_name(name: str, study_dir: Path | None, experiments_dir: Path) -> Path | None:
    """`study_dir` when it holds a study, else the study of that name (an unreadable
    study.json is passed over: it names no study)."""
    if study_dir is not None and (study_dir / STUDY_FILE).is_file():
        return study_dir
    studies, _ = readable_studies(experiments_dir)
    return next((directory for directory, record in studies if record.name == name), None)


def locate_study(key: str, overrides: list[str], study_dir: Path | None) -> Path:
    """The directory of the study to resume: --study-dir, else found by id or name under the
    experiments directory (output.experiments_dir=... in the overrides, else experiments/)."""
    if study_dir is not None:
        if not (study_dir / STUDY_FILE).is_file():
            raise StudyStorageError(f"no {STUDY_FILE} in {study_dir}")
        return study_dir
    root = next(
        (o.split("=", 1)[1] for o in overrides if o.startswith("output.experiments_dir=")),
        "experiments",
    )
    return find_study_dir(Path(root).resolve(), key)


def config_without_secrets(hpo: HpoConfig) -> dict[str, Any]:
    """The resolved config as written next to the study and hashed into study.json: every
    URL that can carry a password (study.storage, tracking.*) without it (a resume then
    takes the storage URL from study.storage=... or $DATAAUG_STUDY_STORAGE)."""
    return public_config(hpo.to_dict())


def study_record(
    study_dir: Path, study_id: str, name: str, hpo: HpoConfig, url: str
) -> StudyRecord:
    """study.json: read back and marked in progress (its config_hash as first written), or
    new."""
    cfg = hpo.study
    if (study_dir / STUDY_FILE).is_file():
        record = StudyRecord.read(study_dir)
        record.requested_trials, record.status = cfg.num_trials, "in_progress"
        record.experiments_dir = str(Path(hpo.train.output.experiments_dir).resolve())
        return record
    return StudyRecord(
        study_id=study_id,
        name=name,
        created=utc_timestamp(),
        storage=redact_url(url),
        requested_trials=cfg.num_trials,
        optimization_metric=cfg.optimization_metric,
        direction=cfg.direction,
        # unsalted: hashing the password in would let the hash confirm a guessed password
        config_hash=config_fingerprint(config_without_secrets(hpo)),
        experiments_dir=str(Path(hpo.train.output.experiments_dir).resolve()),
    )


def shared_split(study_dir: Path, hpo: HpoConfig) -> tuple[SplitManifest, dict[str, float | None]]:
    """The study's split (made once, then read back), and the trivial baselines of the
    optimisation metric on its validation split, the reference for every trial value
    (empty when the split was made for other data: the trials will say so)."""
    path = study_dir / MANIFEST_NAME
    existing = SplitManifest.read(path) if path.is_file() else None
    split, pairs = split_and_pairs(
        hpo.train.dataset, hpo.train.model.num_criteria_classes, existing
    )
    if existing is None:
        atomic_write_text(path, json.dumps(split.to_dict(), indent=1))
    if pairs is None:
        return split, {}
    metric = hpo.study.optimization_metric.removeprefix("val/")
    scores = baseline_scores(pairs, split.post_ids, "validation", [metric], "val")
    return split, {name: row[metric] for name, row in scores.items()}
