"""Running a study: trials until `num_trials` have finished, the study-wide storage budget,
the progress display, `hpo.jsonl`, and the exit code. Several workers may run the same study
(same name, shared storage and study directory): trials are claimed through the database,
and each worker stops when the study has `num_trials` finished (COMPLETE + PRUNED) trials."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dataaug_multi_both.checkpointing.atomic import atomic_write_text
from dataaug_multi_both.checkpointing.checkpointer import best_dtype
from dataaug_multi_both.checkpointing.discard import discard_unstarted_study
from dataaug_multi_both.checkpointing.lock import study_retention_lock
from dataaug_multi_both.checkpointing.study_retention import (
    apply_trial_decision,
    study_disk_problem,
)
from dataaug_multi_both.checkpointing.trial_disk import Stamp, TrialDiskCache, manifest_stamp
from dataaug_multi_both.errors import (
    DataAugError,
    Interrupted,
    StorageError,
    StudyStorageError,
    TrialsFailed,
)
from dataaug_multi_both.hpo.config import HpoConfig
from dataaug_multi_both.hpo.identity import (
    StudyOptions,
    config_without_secrets,
    resolve_identity,
    shared_split,
    study_record,
)
from dataaug_multi_both.hpo.objective import Objective, TrialOutcome, follow, with_base
from dataaug_multi_both.hpo.report import StudyProgress, rss_mb, summary_table, write_plots
from dataaug_multi_both.hpo.storage import (
    is_connection_error,
    open_storage,
    own_database_file,
    quiet_lost_connection,
    redact_url,
    resolve_storage_url,
    setup_lock,
    with_connection_retry,
)
from dataaug_multi_both.hpo.study import (
    STUDY_FILE,
    StudyRecord,
    make_pruner,
    make_sampler,
    stored_identity,
    study_status,
)
from dataaug_multi_both.hpo.study_tracking import (
    finish_parent_run,
    start_parent_run,
    tag_trial_state,
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
from dataaug_multi_both.layout import (
    TRIAL_PREFIX,
    StudyPaths,
    TrialPaths,
    study_name,
    study_trial_id,
    trial_name,
)
from dataaug_multi_both.training.distributed import process_group, torch_device
from dataaug_multi_both.training.interrupt import Terminated, interrupt_signal, sigterm_received
from dataaug_multi_both.training.run_log import RunLog

REQUEUED_FROM = "requeued_from"  # user attr of a trial queued again after a signal


def requeued_from(trial: Any) -> int | None:
    """The interrupted trial a trial runs again; anything but a trial number (an edited study
    record) is no trial."""
    number = trial.user_attrs.get(REQUEUED_FROM)
    return number if isinstance(number, int) and not isinstance(number, bool) else None


WAIT_NOTICE_SEC = 60.0  # how often a worker with nothing left to claim says what it waits on


def waiting_notice(trials: list[Any]) -> str:
    """What a worker whose study is fully claimed waits for. A trial that stops sending
    heartbeats is failed after the grace period; one that never sent any (a worker without
    heartbeats, a record made by hand) is waited on until it ends, so the line names it."""
    running = [t.number for t in trials if t.state.name == "RUNNING"]
    # a number is whatever the database holds: an edited one may be text (markup, escapes)
    numbers = [str(n) if type(n) is int else "?" for n in running[:10]]
    shown = ", ".join(numbers) + (", ..." if len(running) > 10 else "")
    return (
        f"waiting for {len(running)} trial(s) running on other workers ({shown}); "
        "Ctrl-C stops this worker safely"
    )


@dataclass
class StudyResult:
    study_dir: Path
    record: StudyRecord | None  # None on a torchrun rank other than 0
    error: DataAugError | None = None  # why the study stopped, or TrialsFailed; None: done
    follower_exit_code: int = 0  # a torchrun rank other than 0: rank 0's exit code

    @property
    def exit_code(self) -> int:
        return self.error.exit_code if self.error is not None else self.follower_exit_code


class StudyRunner:
    def __init__(self, hpo: HpoConfig, options: StudyOptions) -> None:
        self.hpo = hpo
        self.options = options
        self.console = options.console
        self.experiments_dir = Path(hpo.train.output.experiments_dir).resolve()
        self.started = time.monotonic()
        self.finished_here = 0
        # what each trial keeps on disk, and the retention decision applied to it (with its
        # manifest's stamp then): a trial's end reads only the manifests that changed
        self.trial_disk = TrialDiskCache()
        self.applied: dict[int, tuple[str, Stamp]] = {}
        # failures use up the trial budget, so a study whose every trial fails ends instead of
        # looping: those of every worker, counted from the trial numbered `joined_at` on (the
        # trials there were when this worker joined; a resume starts a fresh budget)
        self.joined_at = 0
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
        threading.excepthook = quiet_lost_connection
        self.study_id, self.name, self.study_dir = resolve_identity(
            self.hpo, self.options, self.experiments_dir
        )
        self.created_study_dir = not self.study_dir.exists()
        self.first_worker = False  # set when this worker records the study in the database
        known = (self.study_dir / STUDY_FILE).is_file()
        recorded = StudyRecord.read(self.study_dir).storage if known else None
        self.url = resolve_storage_url(self.study_dir, self.hpo.study.storage, recorded)
        cfg = self.hpo.study

        def waiting() -> None:
            self.console.print(f"waiting for another worker's set-up of study {self.name}")

        # one worker at a time, from the storage through study.json (workers started
        # together); a failed start is taken back before the next worker goes on
        with setup_lock(self.url, self.name, cfg.connection_retry_sec, waiting):
            try:
                self._set_up_study(optuna)
                self.joined_at = len(
                    self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
                )
                self._requeue_interrupted()  # under the lock: workers never queue it twice
            except BaseException as exc:
                killed = isinstance(exc, (Interrupted, KeyboardInterrupt))
                self.discard_setup("KILLED" if killed else "FAILED")
                raise
        self.log.write(
            "study_resume" if self.options.resume else "study_start",
            study_id=study_name(self.study_id),
            name=self.name,
            storage=redact_url(self.url),
            requested_trials=cfg.num_trials,
            search_space={s.name: s.describe() for s in self.hpo.search_space},
            validation_posts=len(self.split.post_ids["validation"]),
            validation_baselines=self.baselines,
        )
        self.console.print(
            f"study {self.name} ({study_name(self.study_id)}) in {self.study_dir}; "
            f"storage {redact_url(self.url)}"
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

    def _set_up_study(self, optuna: Any) -> None:
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
        self.log = RunLog(StudyPaths(self.study_dir).log)
        atomic_write_text(
            StudyPaths(self.study_dir).config,
            yaml.safe_dump(config_without_secrets(self.hpo), sort_keys=False),
        )
        self.split, self.baselines = shared_split(self.study_dir, self.hpo)
        self.record = study_record(self.study_dir, self.study_id, self.name, self.hpo, self.url)
        self.tracker = start_parent_run(
            self.hpo, self.study, self.record, self.experiments_dir, self._retry
        )
        self.record.write(self.study_dir)

    def _adopt_study_attributes(self) -> None:
        """The first worker stores the study's id and directory in the database; the others
        (and resumes) take them from there, so all agree."""
        attrs = self.study.user_attrs
        if "study_id" in attrs:
            resumed = (self.study_id, self.study_dir) if self.options.resume else None
            self.study_id, self.study_dir = stored_identity(attrs, resumed)
        else:
            self.first_worker = True
            self._retry(
                lambda: self.study.set_user_attr("study_id", self.study_id), "record the study id"
            )
            self._retry(
                lambda: self.study.set_user_attr("study_dir", str(self.study_dir)),
                "record the study dir",
            )

    def discard_setup(self, status: str) -> None:
        """After the set-up failed (`status`: FAILED, or KILLED for a signal), still holding
        the set-up lock (no other worker uses the study meanwhile): the parent MLflow run, if
        opened, ends with that status; a study directory this worker created for a new study
        and that has no study.json yet is taken back, with the study's own SQLite file and its
        set-up lock (nothing `list_studies` would not show and `cleanup` not see stays)."""
        if self.tracker is not None:
            with contextlib.suppress(Exception):
                self.tracker.finish(status)
        study_dir = getattr(self, "study_dir", None)
        if (
            study_dir is None
            or not (self.created_study_dir and self.first_worker)
            or (study_dir / STUDY_FILE).is_file()
        ):
            return
        database = own_database_file(getattr(self, "url", ""), study_dir)
        if hasattr(self, "storage"):
            with contextlib.suppress(Exception):
                self.storage.engine.dispose()  # no open connection to the file removed next
        if discard_unstarted_study(study_dir, database):
            self.console.print(
                f"removed {study_dir}: the study did not start", highlight=False, markup=False
            )

    def _retry(self, call: Any, what: str) -> Any:
        return with_connection_retry(call, what, self.url, self.hpo.study.connection_retry_sec)

    # ------------------------------------------------------------------- run
    def run(self) -> StudyResult:
        cfg = self.hpo.study
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
        try:
            error = self._run_trials(objective)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM, outside a trial's training
            error = self._interrupted(interrupt_signal(exc))
        return self._finish(error)

    def _interrupted(self, signum: int) -> Interrupted:
        """The study's own message for a signal: a stopped trial runs again from its start
        with the same parameters on `--resume-study` (not `train --resume-from`)."""
        name = signal.Signals(signum).name
        return Interrupted(
            f"interrupted by {name}; continue with --resume-study {self.study_id}", signum
        )

    def _run_trials(self, objective: Objective) -> DataAugError | None:
        """Trials until the study has `num_trials` finished; the error that ended it early."""
        import optuna

        cfg = self.hpo.study
        told_at = -math.inf
        while True:
            self._retry(lambda: optuna.storages.fail_stale_trials(self.study), "fail stale trials")
            trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
            counts = state_counts(trials)
            finished = finished_count(counts)
            failed = sum(t.number >= self.joined_at for t in failed_trials(trials))
            if finished + failed >= cfg.num_trials:
                return None
            if objective.stopped_by is not None:  # a signal after a trial had finished
                return self._interrupted(objective.stopped_by)
            if sigterm_received():  # one that Python dropped (raised in a __del__)
                raise Terminated()
            busy = finished + failed + counts.get("RUNNING", 0)
            if busy >= cfg.num_trials and not counts.get("WAITING"):
                if time.monotonic() - told_at >= WAIT_NOTICE_SEC:
                    told_at = time.monotonic()
                    self.console.print(waiting_notice(trials), markup=False, highlight=False)
                time.sleep(min(5, cfg.heartbeat_interval))  # the rest runs on other workers
                continue
            problem = self._disk_problem()
            if problem:
                return StorageError(problem)
            try:
                self.study.optimize(self._guarded(objective), n_trials=1)
            except Interrupted as exc:  # a signal stopped the trial
                return self._interrupted(exc.signum)
            except DataAugError as exc:  # the study cannot go on: disk, MLflow, storage
                return exc
            except Exception as exc:  # the database went away while Optuna created or told a trial
                if not is_connection_error(exc):
                    raise
                try:  # wait for it within the retry budget; a half-recorded trial goes stale
                    self._retry(lambda: self.study.get_trials(deepcopy=False), "reconnect")
                except StudyStorageError as gone:
                    return gone

    def _guarded(self, objective: Objective) -> Any:
        """A trial claimed while the others already fill `num_trials` fails as surplus (not
        counted as a failure), so the study ends with exactly `num_trials` finished."""

        def run(trial: Any) -> float:
            try:
                trials = self._retry(
                    lambda: self.study.get_trials(deepcopy=False), "read the trials"
                )
                others = [t for t in trials if t.number != trial.number]
                busy = sum(t.state.name in (*FINISHED, "RUNNING") for t in others)
                if busy >= self.hpo.study.num_trials:
                    self._retry(
                        lambda: trial.set_user_attr("surplus", True), "mark a surplus trial"
                    )
                    return math.nan
                return objective(trial)
            except (Interrupted, KeyboardInterrupt):  # a signal: it runs again on resume
                self._retry(
                    lambda: trial.set_user_attr("interrupted", True), "record the interrupt"
                )
                raise

        return run

    def _requeue_interrupted(self) -> None:
        """A trial stopped by a signal (Ctrl-C, a preemption's SIGTERM) runs again with the
        same parameters: queued once, the new trial naming the one it replaces (a finished
        trial cannot be marked itself)."""
        trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
        queued = {requeued_from(t) for t in trials} - {None}
        for trial in trials:
            if (
                trial.state.name == "FAIL"
                and trial.user_attrs.get("interrupted")
                and trial.number not in queued
            ):
                self._retry(
                    lambda t=trial: self.study.enqueue_trial(
                        t.params, user_attrs={REQUEUED_FROM: t.number}, skip_if_exists=False
                    ),
                    "re-queue",
                )
                self.log.write("trial_requeued", number=trial.number, params=trial.params)

    def _disk_problem(self) -> str | None:
        threshold = self.hpo.train.retention.disk_space_threshold_percent
        largest = self.trial_disk.largest_resume(self._trial_dirs())
        problem = study_disk_problem(self.experiments_dir, largest, threshold)
        return f"{problem}; free space, then --resume-study {self.study_id}" if problem else None

    def _trial_dirs(self) -> list[Path]:
        return sorted(self.experiments_dir.glob(f"{TRIAL_PREFIX}{self.study_id}-*"))

    def footprint_bytes(self) -> int:
        return self.trial_disk.retained_bytes(self._trial_dirs())

    def _after_trial(self, outcome: TrialOutcome) -> None:
        tag_trial_state(self.tracker, outcome.mlflow_run_id, outcome.state, self.console)
        trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
        views = trial_views(
            trials, TrialView(outcome.number, outcome.state, outcome.value, outcome.params)
        )
        freed = self._apply_study_retention(views)
        self.finished_here += 1
        footprint = self.footprint_bytes()
        self.log.write(
            "trial_end",
            number=outcome.number,
            trial_id=trial_name(outcome.trial_id),
            params=outcome.params,
            state=outcome.state,
            value=outcome.value,
            reason=outcome.reason,
            duration_sec=round(outcome.duration_sec, 2),
            epochs=outcome.epochs,
            bytes_freed=freed,
            study_footprint_bytes=footprint,
            rss_mb=round(rss_mb(), 1),
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
            self.hpo.study.optimization_metric,
        )

    def _apply_study_retention(self, views: list[TrialView], every: bool = False) -> int:
        """Release or slim the checkpoints of finished trials; returns bytes freed. A trial
        whose decision this worker applied and whose manifest has not changed since is
        skipped (`every`: none is: the study's last pass)."""
        dtype = best_dtype(self.hpo.train.retention.best_dtype)
        freed = 0
        plan = study_retention_plan(views, self.hpo.study.keep_top_k_trials)
        with study_retention_lock(self.study_dir):  # one worker at a time
            for number, decision in plan.items():
                trial = TrialPaths.of(self.experiments_dir, study_trial_id(self.study_id, number))
                if not every and self.applied.get(number) == (decision, manifest_stamp(trial.root)):
                    continue
                freed += apply_trial_decision(trial.root, decision, dtype)
                self.applied[number] = (decision, manifest_stamp(trial.root))
        return freed

    # ---------------------------------------------------------------- finish
    def _finish(self, error: DataAugError | None) -> StudyResult:
        trials = self._retry(lambda: self.study.get_trials(deepcopy=False), "read the trials")
        self._apply_study_retention(trial_views(trials), every=True)
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
                "trial_id": (
                    trial_name(str(best.user_attrs["trial_id"]))
                    if "trial_id" in best.user_attrs
                    else None
                ),
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
        plots = write_plots(self.study, StudyPaths(self.study_dir).plots) if best else []
        self.log.write(
            "study_end",
            exit_code=exit_code,
            counts=counts,
            best=self.record.best,
            plots=[p.name for p in plots],
        )
        self.console.print(summary_table(trials, self.hpo.study.optimization_metric))
        finish_parent_run(self.tracker, self.study_dir, exit_code, plots, self.console)
        where = [f"study: {self.study_dir}"]
        if plots:
            where.append(f"plots: {self.study_dir / 'plots'}")
        if self.tracker is not None:
            where.append(
                f"MLflow: {self.tracker.where} (parent run {self.record.mlflow_parent_run_id})"
            )
        self.console.print("\n".join(where), highlight=False)
        return StudyResult(self.study_dir, self.record, error)


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
        except KeyboardInterrupt as exc:  # the other ranks end with the same code
            exit_code = 128 + interrupt_signal(exc)
            raise
        finally:
            dist.broadcast({"kind": "done", "exit_code": exit_code})
