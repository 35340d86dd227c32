"""Which trials a `cleanup` looks at, and what their studies say about them (read-only)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from dataaug_multi_both.checkpointing import lock
from dataaug_multi_both.checkpointing.cleanup import Action, TrialFacts, stray_temp_files
from dataaug_multi_both.config.compose import artifact_config
from dataaug_multi_both.config.schema import RetentionConfig, TrainConfig
from dataaug_multi_both.errors import ConfigError, DataAugError, ScopeError
from dataaug_multi_both.hpo.evaluate import load_study_for
from dataaug_multi_both.hpo.study import STUDY_ID, StudyRecord, study_dirs, trials_home
from dataaug_multi_both.hpo.trials import best_trial, study_retention_plan
from dataaug_multi_both.layout import (
    STUDY_FILE,
    TRIAL_PREFIX,
    StudyPaths,
    TrialPaths,
    recorded_trial_name,
)
from dataaug_multi_both.untrusted import open_regular_file

STUDY_TRIAL = re.compile(rf"^trial_(?P<study>{STUDY_ID.pattern})-(?P<number>\d{{3,}})$")


@dataclass
class StudyView:
    study_id: str
    # by directory name (unique: trial_{study_id}-{NNN}), so a moved tree is still recognised
    trial_dirs: dict[str, tuple[str | None, bool]]  # name -> (decision, running)
    best_dir: str | None


@dataclass
class Scope:
    root: Path
    trials: list[TrialFacts]
    extra: list[Action] = field(default_factory=list)


def checked_root(path: Path) -> Path:
    try:
        root = path.resolve(strict=True)
    except FileNotFoundError as exc:
        raise ScopeError(f"directory not found: {path}") from exc
    except (RuntimeError, OSError) as exc:  # a symlink loop
        raise ScopeError(f"cannot resolve {path}: {exc}") from exc
    if not root.is_dir():
        raise ScopeError(f"not a directory: {path}")
    if root == Path(root.anchor) or root == Path.home():
        raise ScopeError(f"refusing to clean {root}: give a study, trial or experiments directory")
    return root


def read_study(study_dir: Path) -> StudyView:
    record, study = load_study_for(study_dir)
    keep_top_k = _keep_top_k(StudyPaths(study_dir).config)
    trials = study.get_trials(deepcopy=False)
    plan = study_retention_plan(trials, keep_top_k)
    best = best_trial(trials)
    dirs: dict[str, tuple[str | None, bool]] = {}
    for trial in trials:
        name = recorded_trial_name(trial.user_attrs.get("trial_dir"))
        if name is not None:
            dirs[name] = (plan.get(trial.number), trial.state.name in ("RUNNING", "WAITING"))
    best_dir = recorded_trial_name(best.user_attrs.get("trial_dir")) if best else None
    return StudyView(record.study_id, dirs, best_dir)


def _keep_top_k(config: Path) -> int:
    """The study's keep_top_k_trials, 1 when its config is missing or does not say."""
    if not config.is_file():
        return 1
    try:
        study = artifact_config(config).get("study")
        value = study.get("keep_top_k_trials", 1) if isinstance(study, dict) else 1
    except ConfigError as exc:
        raise DataAugError(f"cannot read the study's configuration: {exc.message}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataAugError(f"{config}: study.keep_top_k_trials is not a count: {value!r:.40}")
    return value


def _retention_of(trial_dir: Path) -> RetentionConfig | None:
    """A standalone trial's own retention policy (None: unreadable, the policy step skips it)."""
    try:
        return TrainConfig.from_dict(artifact_config(TrialPaths(trial_dir).config)).retention
    except DataAugError:
        return None


def _finished_an_epoch(trial_dir: Path) -> bool:
    """The run log records a finished epoch (or cannot be read: then assume it does)."""
    try:
        with open_regular_file(TrialPaths(trial_dir).log, follow_symlinks=False) as handle:
            return any(_event(line) == "epoch_end" for line in handle)
    except FileNotFoundError:
        return False
    except OSError:
        return True


def _event(line: bytes) -> object:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record.get("event") if isinstance(record, dict) else None


def _facts(trial_dir: Path, studies: dict[str, StudyView], aggressive: bool) -> TrialFacts:
    match = STUDY_TRIAL.match(trial_dir.name)
    running = lock.is_running(trial_dir)
    study = studies.get(match["study"]) if match else None
    if study is not None:
        decision, db_running = study.trial_dirs.get(trial_dir.name, (None, False))
        referenced = trial_dir.name in study.trial_dirs
        return TrialFacts(
            trial_dir,
            running=running or db_running,
            study_decision=decision,
            keep_single_best=aggressive and study.best_dir == trial_dir.name,
            orphan_dir=(
                "trial directory no study references"
                if not referenced and not running and not TrialPaths(trial_dir).manifest.is_file()
                else None
            ),
        )
    # a trial of no study without a manifest: one of a study whose study.json is gone, or a
    # run killed before it finished an epoch (a run that fails to start takes its own back;
    # one with --checkpoint-dir elsewhere has finished epochs in its log and stays)
    unfinished = (
        not running
        and not TrialPaths(trial_dir).manifest.is_file()
        and (bool(match) or not _finished_an_epoch(trial_dir))
    )
    return TrialFacts(
        trial_dir,
        running=running,
        keep_single_best=True,
        orphan_dir=(
            ("trial directory no study references" if match else "run that kept no checkpoint")
            if unfinished
            else None
        ),
        retention=_retention_of(trial_dir),
    )


def resolve_scope(
    study_dir: Path | None, trial_dir: Path | None, experiments_dir: Path | None, aggressive: bool
) -> Scope:
    """The cleanup root and the trials in it. A study's trials live next to its directory,
    so a study is cleaned within the experiments directory that holds both."""
    given = [p for p in (study_dir, trial_dir, experiments_dir) if p is not None]
    if len(given) != 1:
        raise ScopeError("give exactly one of --study-dir, --trial-dir, --experiments-dir")
    if trial_dir is not None:
        root = checked_root(trial_dir)
        studies = {v.study_id: v for v in (read_study(d) for d in study_dirs(root.parent))}
        return Scope(root, [_facts(root, studies, aggressive)])
    if study_dir is not None:
        study = checked_root(study_dir)
        if not StudyPaths(study).record.is_file():
            raise ScopeError(f"no {STUDY_FILE} in {study}")
        view = read_study(study)
        root = trials_home(study, StudyRecord.read(study))
        trials = sorted(root.glob(f"{TRIAL_PREFIX}{view.study_id}-*"))
        facts = [
            _facts(t, {view.study_id: view}, aggressive)
            for t in trials
            if t.is_dir() and not t.is_symlink()
        ]
        extra = stray_temp_files(study) if study.parent == root else []
        return Scope(root, facts, extra)
    root = checked_root(experiments_dir)  # type: ignore[arg-type]
    studies = {v.study_id: v for v in (read_study(d) for d in study_dirs(root))}
    trials = sorted(p for p in root.glob("trial_*") if p.is_dir() and not p.is_symlink())
    extra = [a for d in [*study_dirs(root), root / ".cache"] for a in stray_temp_files(d)]
    return Scope(root, [_facts(t, studies, aggressive) for t in trials], extra)
