"""Running a study: trials until `num_trials` have finished, the study-wide storage budget,
the progress display, `hpo.jsonl`, the MLflow parent run, and the exit code.

Several workers may run the same study (same name, shared storage and study directory):
trials are claimed through the database, and each worker stops when the study has
`num_trials` finished (COMPLETE + PRUNED) trials in all.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.checkpointer import DTYPES, disk_usage
from dataaug_multi_both.checkpointing.manifest import CheckpointManifest
from dataaug_multi_both.checkpointing.policy import RESUME, fits_on_disk
from dataaug_multi_both.checkpointing.study_retention import apply_trial_decision, retained_bytes
from dataaug_multi_both.config.compose import config_fingerprint
from dataaug_multi_both.data.pipeline import split_and_pairs
from dataaug_multi_both.data.splits import MANIFEST_NAME, SplitManifest
from dataaug_multi_both.errors import DataAugError, StorageError, StudyStorageError, TrialsFailed
from dataaug_multi_both.hpo.config import HpoConfig
from dataaug_multi_both.hpo.objective import Objective, TrialOutcome, follow, with_base
from dataaug_multi_both.hpo.report import StudyProgress, summary_table, write_plots
from dataaug_multi_both.hpo.storage import (
    is_connection_error,
    open_storage,
    redact_url,
    resolve_storage_url,
    with_connection_retry,
)
from dataaug_multi_both.hpo.study import (
    STUDY_FILE,
    StudyRecord,
    find_study_dir,
    make_pruner,
    make_sampler,
    new_study_id,
    study_dirs,
    study_status,
)
from dataaug_multi_both.hpo.trials import (
    FINISHED,
    TrialView,
    best_trial,
    failed_trials,
    finished_count,
    state_counts,
    study_retention_plan,
    trial_views,
)
from dataaug_multi_both.metric_names import short_metric_title
from dataaug_multi_both.stamps import utc_timestamp
from dataaug_multi_both.training.baselines import baseline_scores
from dataaug_multi_both.training.distributed import (
    SINGLE,
    Distributed,
    process_group,
    torch_device,
)
from dataaug_multi_both.training.run_log import RunLog


@dataclass
class StudyOptions:
    study_name: str | None = None
    study_dir: Path | None = None
    resume: str | None = None  # study id (with or without study_) or name
    console: Console = field(default_factory=Console)
    dist: Distributed = SINGLE  # under torchrun: each trial is one data-parallel job


@dataclass
class StudyResult:
    study_dir: Path
    record: StudyRecord | None  # None on a torchrun rank other than 0
    error: DataAugError | None = None  # why the study stopped, or TrialsFailed; None: done
    follower_exit_code: int = 0  # a torchrun rank other than 0: rank 0's exit code

    @property
    def exit_code(self) -> int:
        return self.error.exit_code if self.error is not None else self.follower_exit_code


def _quiet_lost_connection(args: threading.ExceptHookArgs) -> None:
    """Optuna's heartbeat thread dies with a traceback when the database goes away; the
    main thread reports that (retry, then exit 3), so one line is enough here."""
    if args.exc_value is not None and is_connection_error(args.exc_value):
        print("warning: a heartbeat could not reach the study storage", file=sys.stderr)
        return
    threading.__excepthook__(args)


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


class StudyRunner:
    def __init__(self, hpo: HpoConfig, options: StudyOptions) -> None:
        self.hpo = hpo
        self.options = options
        self.console = options.console
        self.experiments_dir = Path(hpo.train.output.experiments_dir).resolve()
        self.started = time.monotonic()
        self.finished_here = 0
        self.failed_here = 0  # failures use up the trial budget of this run, so a study whose
        # every trial fails ends instead of looping (a resume starts a fresh budget)
        self.tracker: Any = None
        self.baselines: dict[str, float | None] = {}  # optimisation metric, on validation

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        import warnings

        import optuna

        # failures are reported by us (hpo.jsonl, the progress line, the exit code)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        # heartbeats, stale-trial retries and matplotlib plots are "experimental" in Optuna 5
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        threading.excepthook = _quiet_lost_connection
        self._resolve_identity()
        recorded = (
            StudyRecord.read(self.study_dir).storage
            if (self.study_dir / STUDY_FILE).is_file()
            else None
        )
        self.url = resolve_storage_url(self.study_dir, self.hpo.study.storage, recorded)
        cfg = self.hpo.study
        self.storage = open_storage(
            self.url, cfg.heartbeat_interval, cfg.grace_period, cfg.connection_retry_sec
        )
        self.study = self._retry(
            lambda: optuna.create_study(
                storage=self.storage,
                study_name=self.name,
                sampler=make_sampler(cfg.sampler, self.hpo.search_space),
                pruner=make_pruner(cfg.pruner),
                direction="maximize",
                load_if_exists=True,
            ),
            "create or load the study",
        )
        self._adopt_study_attributes()
        self.study_dir.mkdir(parents=True, exist_ok=True)
        self.experiments_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.study_dir / "logs" / "hpo.jsonl")
        atomic_write_text(
            self.study_dir / "config.yaml",
            yaml.safe_dump(self._config_without_secrets(), sort_keys=False),
        )
        self.split = self._shared_split()
        self.record = self._study_record()
        self._setup_tracking()
        self.record.write(self.study_dir)
        self.log.write(
            "study_resume" if self.options.resume else "study_start",
            study_id=self.study_id,
            name=self.name,
            storage=redact_url(self.url),
            requested_trials=cfg.num_trials,
            search_space={s.name: s.describe() for s in self.hpo.search_space},
            validation_posts=len(self.split.post_ids["validation"]),
            validation_baselines=self.baselines,
        )
        self.console.print(
            f"study {self.name} ({self.study_id}) in {self.study_dir}; storage {redact_url(self.url)}"
        )
        if self.baselines:
            self.console.print(
                f"{cfg.optimization_metric} on the {len(self.split.post_ids['validation'])} "
                "validation posts, trivial baselines: "
                + ", ".join(
                    f"{name} {'n/a' if v is None else f'{v:.4f}'}"
                    for name, v in self.baselines.items()
                ),
                highlight=False,
            )

    def _resolve_identity(self) -> None:
        if self.options.resume:
            self.study_dir = self.options.study_dir or find_study_dir(
                self.experiments_dir, self.options.resume
            )
            existing = StudyRecord.read(self.study_dir)
            self.study_id, self.name = existing.study_id, existing.name
            return
        name = self.options.study_name or self.hpo.study.name
        joined = self._existing_by_name(name) if name else None
        if joined is not None:  # another worker (or an earlier run) started this study
            self.study_dir, self.study_id = joined, StudyRecord.read(joined).study_id
        else:
            self.study_id = new_study_id()
            self.study_dir = (
                self.options.study_dir or self.experiments_dir / f"study_{self.study_id}"
            )
        self.name = name or f"study-{self.study_id}"

    def _existing_by_name(self, name: str) -> Path | None:
        if self.options.study_dir is not None and (self.options.study_dir / "study.json").is_file():
            return self.options.study_dir
        for directory in study_dirs(self.experiments_dir):
            if StudyRecord.read(directory).name == name:
                return directory
        return None

    def _config_without_secrets(self) -> dict[str, Any]:
        """The resolved config as written next to the study: the storage URL without its
        password (a resume then takes the URL from study.storage=... or $DATAAUG_STUDY_STORAGE)."""
        data = self.hpo.to_dict()
        if data["study"].get("storage"):
            data["study"]["storage"] = redact_url(data["study"]["storage"])
        return data

    def _adopt_study_attributes(self) -> None:
        """The first worker stores the study's id and directory in the database; the others
        (and resumes) take them from there, so all agree."""
        attrs = self.study.user_attrs
        if "study_id" in attrs:
            self.study_id = attrs["study_id"]
            self.study_dir = Path(attrs["study_dir"])
        else:
            self._retry(
                lambda: self.study.set_user_attr("study_id", self.study_id), "record the study id"
            )
            self._retry(
                lambda: self.study.set_user_attr("study_dir", str(self.study_dir)),
                "record the study dir",
            )

    def _shared_split(self) -> SplitManifest:
        """The study's split (made once, then read back), and the trivial baselines of the
        optimisation metric on its validation split, the reference for every trial value."""
        path = self.study_dir / MANIFEST_NAME
        existing = SplitManifest.read(path) if path.is_file() else None
        split, pairs = split_and_pairs(
            self.hpo.train.dataset, self.hpo.train.model.num_criteria_classes, existing
        )
        if existing is None:
            atomic_write_text(path, json.dumps(split.to_dict(), indent=1))
        metric = self.hpo.study.optimization_metric.removeprefix("val/")
        self.baselines = (
            {
                name: row[metric]
                for name, row in baseline_scores(
                    pairs, split.post_ids, "validation", [metric], "val"
                ).items()
            }
            if pairs is not None
            else {}
        )
        return split

    def _study_record(self) -> StudyRecord:
        path = self.study_dir / "study.json"
        cfg = self.hpo.study
        if path.is_file():
            record = StudyRecord.read(self.study_dir)
            record.requested_trials, record.status = cfg.num_trials, "in_progress"
            return record
        return StudyRecord(
            study_id=self.study_id,
            name=self.name,
            created=utc_timestamp(),
            storage=redact_url(self.url),
            requested_trials=cfg.num_trials,
            optimization_metric=cfg.optimization_metric,
            direction=cfg.direction,
            config_hash=config_fingerprint(self.hpo.to_dict()),
        )

    def _setup_tracking(self) -> None:
        tracking = self.hpo.train.tracking
        if tracking.backend != "mlflow":
            return
        from dataaug_multi_both.tracking.mlflow_logger import RunTracker

        self.tracker = RunTracker(tracking, self.experiments_dir)
        existing = (
            self.study.user_attrs.get("mlflow_parent_run_id") or self.record.mlflow_parent_run_id
        )
        cfg = self.hpo.study
        params = {
            "num_trials": cfg.num_trials,
            "optimization_metric": cfg.optimization_metric,
            "sampler": cfg.sampler.type,
            "sampler_seed": cfg.sampler.seed,
            "pruner": cfg.pruner.type,
            "keep_top_k_trials": cfg.keep_top_k_trials,
            **{f"search_space.{s.name}": s.describe() for s in self.hpo.search_space},
        }
        run_id = self.tracker.start(
            existing, f"study_{self.study_id}", params, {"study_id": self.study_id}
        )
        if existing != run_id:
            self._retry(
                lambda: self.study.set_user_attr("mlflow_parent_run_id", run_id),
                "record the MLflow run",
            )
        self.record.mlflow_parent_run_id = run_id

    def _retry(self, call: Any, what: str) -> Any:
        return with_connection_retry(call, what, self.url, self.hpo.study.connection_retry_sec)

    # ------------------------------------------------------------------- run
    def run(self) -> StudyResult:
        import optuna

        cfg = self.hpo.study
        self._requeue_interrupted()
        objective = Objective(
            base=with_base(self.hpo.train, self.experiments_dir),
            specs=self.hpo.search_space,
            study_id=self.study_id,
            metric=cfg.optimization_metric,
            split=self.split,
            console=self.console,
            parent_run_id=self.record.mlflow_parent_run_id,
            storage_retry=self._retry,
            on_trial_end=self._after_trial,
            dist=self.options.dist,
        )
        error: DataAugError | None = None
        while True:
            self._retry(lambda: optuna.storages.fail_stale_trials(self.study), "fail stale trials")
            trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
            counts = state_counts(trials)
            finished = finished_count(counts)
            if finished + self.failed_here >= cfg.num_trials:
                break
            busy = finished + self.failed_here + counts.get("RUNNING", 0)
            if busy >= cfg.num_trials and not counts.get("WAITING"):
                time.sleep(min(5, cfg.heartbeat_interval))  # the rest runs on other workers
                continue
            problem = self._disk_problem()
            if problem:
                error = StorageError(problem)
                break
            try:
                self.study.optimize(self._guarded(objective), n_trials=1)
            except DataAugError as exc:  # the study cannot go on: disk, MLflow, storage, signal
                error = exc
                break
            except Exception as exc:  # the database went away while Optuna created or told a trial
                if not is_connection_error(exc):
                    raise
                try:  # wait for it within the retry budget; a half-recorded trial goes stale
                    self._retry(lambda: self.study.get_trials(deepcopy=False), "reconnect")
                except StudyStorageError as gone:
                    error = gone
                    break
        return self._finish(error)

    def _guarded(self, objective: Objective) -> Any:
        """A trial claimed while the others already fill `num_trials` fails as surplus (not
        counted as a failure), so the study ends with exactly `num_trials` finished."""

        def run(trial: Any) -> float:
            trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
            others = [t for t in trials if t.number != trial.number]
            busy = sum(t.state.name in (*FINISHED, "RUNNING") for t in others)
            if busy >= self.hpo.study.num_trials:
                self._retry(lambda: trial.set_user_attr("surplus", True), "mark a surplus trial")
                return math.nan
            return objective(trial)

        return run

    def _requeue_interrupted(self) -> None:
        trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
        for trial in trials:
            if (
                trial.state.name == "FAIL"
                and trial.user_attrs.get("interrupted")
                and not trial.user_attrs.get("requeued")
            ):
                self._retry(
                    lambda t=trial: self.study.enqueue_trial(t.params, skip_if_exists=False),
                    "re-queue",
                )
                self.storage.set_trial_user_attr(trial._trial_id, "requeued", True)
                self.log.write("trial_requeued", number=trial.number, params=trial.params)

    def _disk_problem(self) -> str | None:
        """Free space must stay above the threshold after the next trial's checkpoints."""
        threshold = self.hpo.train.retention.disk_space_threshold_percent
        usage = disk_usage(self.experiments_dir)
        needed = 2 * self._largest_checkpoint()
        if fits_on_disk(usage.free, usage.total, needed, threshold):
            return None
        return (
            f"not enough disk space for another trial in {self.experiments_dir}: "
            f"{usage.free / 1e9:.3f} GB free of {usage.total / 1e9:.3f} GB, the threshold is {threshold}% "
            f"and a trial needs about {needed / 1e6:.1f} MB; free space, then --resume-study {self.study_id}"
        )

    def _largest_checkpoint(self) -> int:
        """The largest resume checkpoint any trial of the study has written (0 before any)."""
        sizes = [0]
        for trial_dir in self._trial_dirs():
            try:
                manifest = CheckpointManifest.read(trial_dir / "checkpoints")
            except StorageError:  # unreadable: the trial's own run reports it
                continue
            if manifest is not None:
                sizes += [r.size_bytes for r in manifest.records if r.kind == RESUME]
        return max(sizes)

    def _trial_dirs(self) -> list[Path]:
        return sorted(self.experiments_dir.glob(f"trial_{self.study_id}-*"))

    def footprint_bytes(self) -> int:
        return sum(retained_bytes(d) for d in self._trial_dirs())

    def _after_trial(self, outcome: TrialOutcome) -> None:
        trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
        views = trial_views(
            trials, TrialView(outcome.number, outcome.state, outcome.value, outcome.params)
        )
        freed = self._apply_study_retention(views)
        self.finished_here += 1
        if outcome.state == "FAIL" and outcome.reason is not None:
            self.failed_here += 1
        footprint = self.footprint_bytes()
        self.log.write(
            "trial_end",
            number=outcome.number,
            trial_id=outcome.trial_id,
            params=outcome.params,
            state=outcome.state,
            value=outcome.value,
            reason=outcome.reason,
            duration_sec=round(outcome.duration_sec, 2),
            epochs=outcome.epochs,
            bytes_freed=freed,
            study_footprint_bytes=footprint,
            rss_mb=round(_rss_mb(), 1),
            pid=os.getpid(),
        )
        progress = self._progress(views)
        self.console.print(progress.line(), highlight=False)
        if self.tracker is not None and progress.best_value is not None:
            metrics = {"best_value": progress.best_value, "study/footprint_mb": footprint / 1e6}
            self.tracker.log_metrics(progress.finished, {**metrics, "study/bytes_freed": freed})

    def _progress(self, views: list[TrialView]) -> StudyProgress:
        best = best_trial(views)
        return StudyProgress(
            self.hpo.study.num_trials,
            state_counts(views),
            best.value if best else None,
            best.number if best else None,
            time.monotonic() - self.started,
            self.finished_here,
        )

    def _apply_study_retention(self, views: list[TrialView]) -> int:
        """Release or slim the checkpoints of finished trials; returns bytes freed."""
        dtype = DTYPES[self.hpo.train.retention.best_dtype]
        freed = 0
        for number, decision in study_retention_plan(
            views, self.hpo.study.keep_top_k_trials
        ).items():
            trial_dir = self.experiments_dir / f"trial_{self.study_id}-{number:03d}"
            freed += apply_trial_decision(trial_dir, decision, dtype)
        return freed

    # ---------------------------------------------------------------- finish
    def _finish(self, error: DataAugError | None) -> StudyResult:
        trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
        self._apply_study_retention(trial_views(trials))
        counts = state_counts(trials)
        finished = finished_count(counts)
        failures = failed_trials(trials)
        if error is None and failures:
            error = TrialsFailed(
                f"{len(failures)} trial(s) failed: "
                + "; ".join(
                    f"trial {t.number}: {t.user_attrs.get('fail_reason', 'unknown')}"
                    for t in failures[:3]
                )
            )
        exit_code = error.exit_code if error is not None else 0
        best = best_trial(trials)
        self.record.counts = counts
        self.record.best = (
            {
                "number": best.number,
                "trial_id": best.user_attrs.get("trial_id"),
                "value": best.value,
                "params": best.params,
            }
            if best
            else None
        )
        self.record.status = study_status(finished, self.hpo.study.num_trials, exit_code)
        self.record.last_exit_code = exit_code
        self.record.footprint_bytes = self.footprint_bytes()
        self.record.write(self.study_dir)
        plots = write_plots(self.study, self.study_dir / "plots") if best else []
        self.log.write(
            "study_end",
            exit_code=exit_code,
            counts=counts,
            best=self.record.best,
            plots=[p.name for p in plots],
        )
        self.console.print(
            summary_table(trials, short_metric_title(self.hpo.study.optimization_metric))
        )
        self._finish_tracking(exit_code, plots)
        where = [f"study: {self.study_dir}"]
        if plots:
            where.append(f"plots: {self.study_dir / 'plots'}")
        if self.tracker is not None:
            where.append(
                f"MLflow: {self.tracker.display_uri} (parent run {self.record.mlflow_parent_run_id})"
            )
        self.console.print("\n".join(where), highlight=False)
        return StudyResult(self.study_dir, self.record, error)

    def _finish_tracking(self, exit_code: int, plots: list[Path]) -> None:
        if self.tracker is None:
            return
        try:
            self.tracker.log_artifacts(
                [self.study_dir / "study.json", self.study_dir / "logs" / "hpo.jsonl", *plots]
            )
            self.tracker.finish("FINISHED" if exit_code in (0, 1) else "FAILED")
        except DataAugError as exc:
            self.console.print(f"warning: {exc.message}")


def locate_study(key: str, overrides: list[str], study_dir: Path | None) -> Path:
    """The directory of the study to resume: --study-dir, else found by id or name under the
    experiments directory (output.experiments_dir=... in the overrides, else experiments/)."""
    if study_dir is not None:
        if not (study_dir / "study.json").is_file():
            raise StudyStorageError(f"no study.json in {study_dir}")
        return study_dir
    root = next(
        (o.split("=", 1)[1] for o in overrides if o.startswith("output.experiments_dir=")),
        "experiments",
    )
    return find_study_dir(Path(root).resolve(), key)


def run_study(hpo: HpoConfig, options: StudyOptions) -> StudyResult:
    """The study; under torchrun rank 0 runs it and the other ranks `follow` its trials."""
    dist = options.dist
    device = torch_device(hpo.train.trainer.device)
    with process_group(dist, device, hpo.train.trainer.ddp_timeout_sec):
        if not dist.is_main:
            code = follow(dist, options.console)
            return StudyResult(options.study_dir or Path("."), None, follower_exit_code=code)
        exit_code = 1
        try:
            runner = StudyRunner(hpo, options)
            runner.setup()
            result = runner.run()
            exit_code = result.exit_code
            return result
        finally:
            dist.broadcast({"kind": "done", "exit_code": exit_code})
