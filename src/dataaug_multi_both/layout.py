"""Where everything lives on disk: the one place that spells the experiments tree.

```
{experiments_dir}/
  trial_{trial_id}/          config.yaml, split_manifest.json, .lock, logs/train.jsonl,
                             checkpoints/{epoch_NNN.pt, manifest.json}
  study_{study_id}/          study.json, optuna_study.db, config.yaml, split_manifest.json,
                             logs/hpo.jsonl, plots/
  .cache/features/           tokenised posts shared by runs on the same data and tokenizer
```
A study's trials are `trial_{study_id}-{NNN}` next to the study directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TRIAL_PREFIX = "trial_"
STUDY_PREFIX = "study_"
CHECKPOINTS_DIR = "checkpoints"
MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.yaml"
SPLIT_MANIFEST_FILE = "split_manifest.json"
LOCK_FILE = ".lock"
STUDY_RETENTION_LOCK = ".retention.lock"
LOGS_DIR = "logs"
TRAIN_LOG = "train.jsonl"
HPO_LOG = "hpo.jsonl"
STUDY_FILE = "study.json"
STUDY_DB = "optuna_study.db"
SETUP_LOCK_SUFFIX = ".setup.lock"  # beside a study's SQLite file: one worker sets it up at a time
PLOTS_DIR = "plots"
# the only names the checkpoint store writes, and so the only ones a manifest may name
# a trial or study id read back from a file may become part of a path: letters, digits, _ . -
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
CHECKPOINT_FILE = re.compile(r"epoch_[0-9]{3,6}\.pt")
# the one mid-epoch resume checkpoint of a trial (trainer.save_steps), replaced in place
MID_EPOCH_FILE = "mid_epoch.pt"


def recorded_trial_name(value: object) -> str | None:
    """The trial directory name in a recorded path (a study database's `trial_dir`), or None
    when the value is not a path to a trial directory (the record is not trusted)."""
    if not isinstance(value, str):
        return None
    name = Path(value).name
    rest = name.removeprefix(TRIAL_PREFIX)
    return name if rest != name and SAFE_ID.fullmatch(rest) else None


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.pt"


def study_trial_id(study_id: str, number: int) -> str:
    return f"{study_id}-{number:03d}"


def study_name(study_id: str) -> str:
    """How a study is named to users (MLflow tags, study.json, reports, listings): its
    directory name, `study_{id}`."""
    return f"{STUDY_PREFIX}{study_id}"


def trial_name(trial_id: str) -> str:
    """How a trial is named to users: its directory name, `trial_{id}`."""
    return f"{TRIAL_PREFIX}{trial_id}"


@dataclass(frozen=True)
class TrialPaths:
    root: Path  # trial_{id}

    @classmethod
    def of(cls, experiments_dir: Path, trial_id: str) -> TrialPaths:
        return cls(experiments_dir / f"{TRIAL_PREFIX}{trial_id}")

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    @property
    def manifest(self) -> Path:
        return self.checkpoints / MANIFEST_FILE

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def split_manifest(self) -> Path:
        return self.root / SPLIT_MANIFEST_FILE

    @property
    def log(self) -> Path:
        return self.root / LOGS_DIR / TRAIN_LOG


@dataclass(frozen=True)
class StudyPaths:
    root: Path  # study_{id}

    @classmethod
    def of(cls, experiments_dir: Path, study_id: str) -> StudyPaths:
        return cls(experiments_dir / f"{STUDY_PREFIX}{study_id}")

    @property
    def record(self) -> Path:
        return self.root / STUDY_FILE

    @property
    def database(self) -> Path:
        return self.root / STUDY_DB

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def split_manifest(self) -> Path:
        return self.root / SPLIT_MANIFEST_FILE

    @property
    def log(self) -> Path:
        return self.root / LOGS_DIR / HPO_LOG

    @property
    def plots(self) -> Path:
        return self.root / PLOTS_DIR

    def trial(self, study_id: str, number: int) -> TrialPaths:
        """A trial of the study: next to the study directory."""
        return TrialPaths.of(self.root.parent, study_trial_id(study_id, number))

    def trial_dirs(self, study_id: str) -> list[Path]:
        return sorted(self.root.parent.glob(f"{TRIAL_PREFIX}{study_id}-*"))
