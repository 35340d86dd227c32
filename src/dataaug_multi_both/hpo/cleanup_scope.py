"""Which trials a `cleanup` looks at, and what their studies say about them (read-only)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from dataaug_multi_both.checkpointing import lock
from dataaug_multi_both.checkpointing.atomic import TEMP_MARKER
from dataaug_multi_both.checkpointing.cleanup import Action, TrialFacts, stray_temp_files
from dataaug_multi_both.config.compose import artifact_config
from dataaug_multi_both.config.schema import RetentionConfig, TrainConfig
from dataaug_multi_both.errors import ConfigError, DataAugError, ScopeError
from dataaug_multi_both.hpo.study import STUDY_ID, StudyRecord, study_dirs, trials_home
from dataaug_multi_both.hpo.study_access import load_study_for
from dataaug_multi_both.hpo.trials import best_trial, study_retention_plan
from dataaug_multi_both.layout import (
    CHECKPOINT_FILE,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    LOCK_FILE,
    LOGS_DIR,
    SAFE_ID,
    SPLIT_MANIFEST_FILE,
    STUDY_FILE,
    TRAIN_LOG,
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
    # where the database says its trials are (absolute parents of the recorded trial_dir)
    recorded_homes: set[Path] = field(default_factory=set)


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
    homes: set[Path] = set()
    for trial in trials:
        recorded = trial.user_attrs.get("trial_dir")
        name = recorded_trial_name(recorded)
        if name is not None:
            dirs[name] = (plan.get(trial.number), trial.state.name in ("RUNNING", "WAITING"))
            homes.add(Path(str(recorded)).parent)
    best_dir = recorded_trial_name(best.user_attrs.get("trial_dir")) if best else None
    return StudyView(record.study_id, dirs, best_dir, homes)


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


# what a run writes before its first checkpoint: a directory holding anything else is not
# (only) a run's, and is never removed whole
RUN_FILES = {CONFIG_FILE, SPLIT_MANIFEST_FILE, LOCK_FILE, LOGS_DIR, CHECKPOINTS_DIR}
MAX_LOG_BYTES = 16 * 2**20  # a start-up log is a few kB; a larger one is not a dead start


def _holds_only_run_files(trial_dir: Path, checkpoints_allowed: bool) -> bool:
    """Every entry of the trial directory is one a run writes (temp files of interrupted
    writes included; checkpoint files only if `checkpoints_allowed`), none a symlink."""

    def ours(path: Path, allowed: set[str]) -> bool:
        return not path.is_symlink() and (path.name in allowed or TEMP_MARKER in path.name)

    try:
        top = list(trial_dir.iterdir())
        logs = trial_dir / LOGS_DIR
        checkpoints = trial_dir / CHECKPOINTS_DIR
        inner = list(logs.iterdir()) if logs.is_dir() and not logs.is_symlink() else []
        saved = list(checkpoints.iterdir()) if checkpoints.is_dir() else []
    except OSError:
        return False
    if checkpoints.is_symlink() or logs.is_symlink():
        return False
    return (
        all(ours(p, RUN_FILES) for p in top)
        and all(ours(p, {TRAIN_LOG}) for p in inner)
        and all(
            (checkpoints_allowed and CHECKPOINT_FILE.fullmatch(p.name) and p.is_file())
            or ours(p, set())
            for p in saved
        )
    )


def _finished_an_epoch(trial_dir: Path) -> bool:
    """The run log records a finished epoch (or cannot be read, or is too large to be a
    start-up log: then assume it does)."""
    try:
        with open_regular_file(TrialPaths(trial_dir).log, follow_symlinks=False) as handle:
            data = handle.read(MAX_LOG_BYTES + 1)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    if len(data) > MAX_LOG_BYTES:
        return True
    return any(_event(line) == "epoch_end" for line in data.splitlines())


def _event(line: bytes) -> object:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record.get("event") if isinstance(record, dict) else None


def _orphan_study_trial(trial_dir: Path, running: bool) -> bool:
    """A study trial's directory without a manifest, holding only a run's files."""
    return (
        not running
        and not TrialPaths(trial_dir).manifest.is_file()
        and _holds_only_run_files(trial_dir, checkpoints_allowed=True)
    )


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
                if not referenced and _orphan_study_trial(trial_dir, running)
                else None
            ),
        )
    # a trial of no study without a manifest: one of a study whose study.json is gone, or a
    # run killed before it finished an epoch (a run that fails to start takes its own back;
    # one with --checkpoint-dir elsewhere has finished epochs in its log and stays). Only a
    # directory named as a run's and holding nothing but a run's files ever goes whole.
    unfinished = (
        _orphan_study_trial(trial_dir, running)
        if match
        else (
            not running
            and SAFE_ID.fullmatch(trial_dir.name.removeprefix(TRIAL_PREFIX)) is not None
            and trial_dir.name.startswith(TRIAL_PREFIX)
            and not TrialPaths(trial_dir).manifest.is_file()
            and _holds_only_run_files(trial_dir, checkpoints_allowed=False)
            and not _finished_an_epoch(trial_dir)
        )
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
        # elsewhere than next to the study (study.json's experiments directory): only where
        # the study's own database puts its trials, only the trials it names, never a whole
        # directory (a planted or stale study.json must not steer cleanup at other trials)
        elsewhere = root != study.parent
        if elsewhere and root not in view.recorded_homes:
            root, elsewhere = study.parent, False
        trials = [
            t
            for t in sorted(root.glob(f"{TRIAL_PREFIX}{view.study_id}-*"))
            if STUDY_TRIAL.match(t.name)
            and t.is_dir()
            and not t.is_symlink()
            and (not elsewhere or t.name in view.trial_dirs)
        ]
        facts = [_facts(t, {view.study_id: view}, aggressive) for t in trials]
        if elsewhere:
            facts = [replace(f, orphan_dir=None) for f in facts]
        extra = [] if elsewhere else stray_temp_files(study)
        return Scope(root, facts, extra)
    root = checked_root(experiments_dir)  # type: ignore[arg-type]
    studies = {v.study_id: v for v in (read_study(d) for d in study_dirs(root))}
    trials = sorted(p for p in root.glob("trial_*") if p.is_dir() and not p.is_symlink())
    extra = [a for d in [*study_dirs(root), root / ".cache"] for a in stray_temp_files(d)]
    return Scope(root, [_facts(t, studies, aggressive) for t in trials], extra)
