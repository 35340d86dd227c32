"""Cleaning up experiment trees: plan first (read-only), then act.

What goes, per trial (never a running one):
- temp files of interrupted writes;
- checkpoint files their manifest does not list as retained (orphaned checkpoints);
- manifest records whose file is gone are fixed (`retained: false`), not deleted;
- unless orphaned-only: what the trial's retention policy or its study's top-K rule no
  longer keeps; with `aggressive`, everything but the single best checkpoint of the best
  trial of each study (and of each standalone run).
Trial directories that belong to a study that no longer knows them are orphans too.
Every path acted on must lie inside the cleanup root, and symlinks are never followed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path

from dataaug_multi_both.checkpointing import lock as trial_lock
from dataaug_multi_both.checkpointing.atomic import TEMP_MARKER, remove_quietly
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest, CheckpointRecord
from dataaug_multi_both.checkpointing.policy import RESUME, decide, over_budget
from dataaug_multi_both.checkpointing.store import CheckpointStore, verifies
from dataaug_multi_both.checkpointing.study_retention import KEEP_BEST, RELEASE, symlinked
from dataaug_multi_both.config.schema import RetentionConfig
from dataaug_multi_both.errors import DataAugError, StorageError
from dataaug_multi_both.layout import TrialPaths

ORPHANED_ONLY = "orphaned-only"
POLICY = "policy"
AGGRESSIVE = "aggressive"


@dataclass(frozen=True)
class TrialFacts:
    """What cleanup needs to know of one trial directory."""

    trial_dir: Path
    running: bool = False
    study_decision: str | None = None  # KEEP_BEST / RELEASE for study trials, None standalone
    keep_single_best: bool = False  # aggressive: this trial keeps exactly its best checkpoint
    # why the whole directory goes (a study trial its study does not reference, a run that
    # kept no checkpoint), or None
    orphan_dir: str | None = None
    retention: RetentionConfig | None = None  # a standalone trial's own policy


@dataclass(frozen=True)
class Action:
    kind: str  # delete_file | delete_record | delete_dir | fix_record | slim
    path: Path
    bytes: int
    reason: str
    trial: Path | None = None  # the trial directory it belongs to (locked while acting)


@dataclass
class CleanupPlan:
    actions: list[Action] = field(default_factory=list)
    preserved: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # trials left untouched because of them

    @property
    def bytes_to_free(self) -> int:
        return sum(a.bytes for a in self.actions if a.kind != "fix_record")


def inside(path: Path, root: Path) -> bool:
    """True when `path` (not followed if a symlink) lies inside `root`."""
    try:
        parent = path.parent.resolve(strict=False)
    except (OSError, RuntimeError):
        return False
    return (parent / path.name).is_relative_to(root) and not path.is_symlink()


def _files(directory: Path) -> Iterable[Path]:
    """Regular files under `directory`, without descending into symlinked directories."""
    if not directory.is_dir() or directory.is_symlink():
        return
    for entry in sorted(directory.iterdir()):
        if entry.is_symlink():
            continue
        if entry.is_dir():
            yield from _files(entry)
        elif entry.is_file():
            yield entry


def plan_trial(facts: TrialFacts, mode: str) -> CleanupPlan:
    plan = _plan_trial(facts, mode)
    plan.actions = [replace(a, trial=facts.trial_dir) for a in plan.actions]
    return plan


def _plan_trial(facts: TrialFacts, mode: str) -> CleanupPlan:
    plan = CleanupPlan()
    trial_dir = facts.trial_dir
    if facts.running:
        plan.skipped.append(f"{trial_dir.name}: running")
        return plan
    if facts.orphan_dir:
        size = sum(p.stat().st_size for p in _files(trial_dir))
        plan.actions.append(Action("delete_dir", trial_dir, size, facts.orphan_dir))
        return plan
    for path in _files(trial_dir):
        if TEMP_MARKER in path.name:
            plan.actions.append(
                Action(
                    "delete_file", path, path.stat().st_size, "temp file of an interrupted write"
                )
            )
    directory = TrialPaths(trial_dir).checkpoints
    if symlinked(trial_dir):
        plan.problems.append(f"{trial_dir.name}: it or its checkpoints/ is a symlink; left as is")
        return plan
    try:
        manifest = CheckpointManifest.read(directory) if directory.is_dir() else None
    except StorageError as exc:  # an edited or planted manifest decides nothing
        plan.problems.append(f"{trial_dir.name}: {exc}; its checkpoints were left as they are")
        return plan
    listed = {r.file for r in manifest.retained()} if manifest else set()
    if manifest is not None and manifest.mid_epoch is not None:
        listed.add(manifest.mid_epoch.file)  # a killed run's latest progress
    for path in sorted(directory.glob("*.pt")) if directory.is_dir() else []:
        if path.name not in listed and not path.is_symlink():
            plan.actions.append(
                Action("delete_file", path, path.stat().st_size, "checkpoint not in its manifest")
            )
    if manifest is None:
        return plan
    present = [r for r in manifest.retained() if (directory / r.file).is_file()]
    for record in manifest.retained():
        if record not in present:
            plan.actions.append(
                Action("fix_record", directory / record.file, 0, "recorded as retained but missing")
            )
    doomed, slim = _policy_decisions(facts, manifest, present, mode)
    for record in present:
        path = directory / record.file
        if record.epoch in doomed:
            plan.actions.append(
                Action("delete_record", path, record.size_bytes, doomed[record.epoch])
            )
        else:
            if record.epoch in slim and record.kind == RESUME:
                plan.actions.append(
                    Action("slim", path, record.size_bytes * 2 // 3, "kept as weights-only")
                )
            plan.preserved.append(path)
    return plan


def _policy_decisions(
    facts: TrialFacts, manifest: CheckpointManifest, present: list[CheckpointRecord], mode: str
) -> tuple[dict[int, str], set[int]]:
    """epoch -> reason to delete, and the epochs to slim, for the retained checkpoints."""
    if mode == ORPHANED_ONLY or not present:
        return {}, set()
    best = next((r.epoch for r in present if r.is_best), None)
    if mode == AGGRESSIVE:
        keep = {best} if facts.keep_single_best and best is not None else set()
        return {
            r.epoch: "aggressive: only the best trial's best checkpoint stays"
            for r in present
            if r.epoch not in keep
        }, set()
    if facts.study_decision == RELEASE:
        return {r.epoch: "outside the study's top-K (or pruned/failed)" for r in present}, set()
    if facts.study_decision == KEEP_BEST:
        return {r.epoch: "study trials keep only their best" for r in present if r.epoch != best}, (
            {best} if best else set()
        )
    if facts.retention is None:
        return {}, set()
    retention = facts.retention
    decision = decide(manifest.facts(present), retention.keep_last_n, retention.keep_best_k)
    doomed = {e: "retention policy" for e in decision.delete}
    kept = manifest.facts([r for r in present if r.epoch not in doomed])
    capped, _ = over_budget(kept, retention.max_total_size_gb * 1e9)
    doomed.update({e: "retention.max_total_size_gb" for e in capped})
    return doomed, set(decision.slim)


def execute(plan: CleanupPlan, root: Path) -> int:
    """Carry the plan out, each trial's actions while holding its lock (a trial that started
    running since the plan was made is skipped); returns bytes freed. Raises DataAugError
    (exit 1) on I/O errors."""
    freed = 0
    try:
        for trial, actions in groupby(plan.actions, key=lambda a: a.trial):
            if trial is None:
                freed += _act(list(actions), root)
                continue
            with trial_lock.held_unless_running(trial) as ours:
                if ours:
                    freed += _act(list(actions), root)
                else:
                    plan.skipped.append(f"{trial.name}: running")
    except OSError as exc:
        raise DataAugError(
            f"cleanup failed at {exc.filename or '?'}: {exc.strerror or exc}"
        ) from exc
    return freed


def _act(actions: list[Action], root: Path) -> int:
    freed = 0
    stores: dict[Path, CheckpointStore] = {}
    for action in actions:
        if not inside(action.path, root):
            raise DataAugError(f"refusing to touch {action.path}: outside {root} or a symlink")
        if action.kind == "delete_dir":
            shutil.rmtree(action.path)  # rmtree unlinks symlinks, never follows them
            freed += action.bytes
        elif action.kind == "delete_file":
            remove_quietly(action.path)
            freed += action.bytes
        else:
            store = stores.setdefault(action.path.parent, _store(action.path.parent))
            record = store.manifest.by_file(action.path.name)
            if record is None or not record.retained:
                continue
            if action.kind == "fix_record":
                record.retained = False
                store.manifest.refresh_flags()
                store.manifest.write(store.directory)
            elif action.kind == "delete_record":
                freed += store.delete(record)
            elif action.kind == "slim" and verifies(action.path, record.sha256):
                freed += store.slim(record, None)
    return freed


def _store(directory: Path) -> CheckpointStore:
    manifest = CheckpointManifest.read(directory)
    assert manifest is not None
    return CheckpointStore(
        directory, manifest.trial_id, manifest.optimization_metric, directory.parent
    )


def stray_temp_files(directory: Path) -> list[Action]:
    """Temp files outside trial directories (study dir, feature cache)."""
    return [
        Action("delete_file", p, p.stat().st_size, "temp file of an interrupted write")
        for p in _files(directory)
        if TEMP_MARKER in p.name
    ]
