"""A run's checkpoints, seen from the training loop: an epoch goes to disk through the
background writer when the retention policy wants it; an epoch the policy skips is kept as
an in-memory snapshot so that an interrupt can still write it; what is on disk (the latest
resume checkpoint, the best) is read back through the manifest. No checkpointer: --dry-run.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataaug_multi_both.checkpointing import format as ckpt
from dataaug_multi_both.checkpointing.background import BackgroundWriter
from dataaug_multi_both.checkpointing.checkpointer import Checkpointer
from dataaug_multi_both.checkpointing.policy import RESUME
from dataaug_multi_both.checkpointing.store import CheckpointStore, serialize
from dataaug_multi_both.config.schema import RetentionConfig, TrackingConfig
from dataaug_multi_both.redaction import redact_url


class RunCheckpoints:
    def __init__(self, checkpointer: Checkpointer | None, directory: Path) -> None:
        self.checkpointer = checkpointer
        self.directory = directory
        self.writer = BackgroundWriter()  # checkpoints go to disk while the next epoch trains
        self.unsaved: dict[str, Any] | None = None  # last finished epoch, if not on disk

    @classmethod
    def open(
        cls,
        directory: Path,
        trial_id: str,
        metric_name: str,
        trial_dir: Path,
        retention: RetentionConfig,
        log: Any,
        console: Any,
    ) -> RunCheckpoints:
        """The checkpoints of a run in `directory`: temp files of a crashed write removed,
        every save / slim / delete reported to the run log (warnings also to the console)."""
        store = CheckpointStore(directory, trial_id, metric_name, trial_dir)
        for path in store.remove_stray_temp_files():
            log.write("checkpoint", action="removed_temp_file", file=path.name)

        def report(action: str, **fields: Any) -> None:
            log.write("checkpoint", epoch=fields.pop("epoch", None), action=action, **fields)
            if action == "warning":
                console.print(f"warning: {fields['message']}")

        return cls(Checkpointer(store, retention, report), directory)

    def resume_hint(self, epoch: int, log_path: Path, tracking: TrackingConfig) -> str:
        """What a user can do after the tracking server went away at the end of `epoch`."""
        latest = self.latest_resume()
        if latest is None:
            return f"epoch {epoch} is in {log_path}; nothing to resume from (--dry-run)"
        return (
            f"epoch {epoch} is saved; once the server is back, resume with: "
            f"{resume_command(latest, tracking)}"
        )

    @property
    def enabled(self) -> bool:
        return self.checkpointer is not None

    def save_epoch(
        self,
        epoch: int,
        step: int,
        metric_value: float | None,
        metrics: dict[str, Any],
        is_new_best: bool,
        is_final: bool,
        payload: Callable[[bool], dict[str, Any]],
    ) -> int | None:
        """Hand the epoch to the background writer if the retention policy wants it; returns
        its size in bytes (None: not saved). `payload(copy)` builds the resume payload,
        `copy` snapshotting every tensor to the CPU. The loop blocks only while the epoch is
        serialized in memory (and while the previous write, if still running, finishes)."""
        if self.checkpointer is None:
            return None
        self.writer.wait()
        checkpointer = self.checkpointer
        if not checkpointer.wants(epoch, is_new_best, is_final):
            # not saved (min_interval_epochs > 1): kept in memory for an interrupt
            self.unsaved = payload(True)
            return None
        self.unsaved = None
        state = payload(False)
        data, threshold, saved = serialize(state), state.get(ckpt.DECISION_THRESHOLD), dict(metrics)
        self.writer.submit(
            lambda: checkpointer.write_serialized(
                data, RESUME, epoch, step, metric_value, saved, threshold
            )
        )
        return len(data)

    def save_mid_epoch(
        self, epoch: int, step: int, batches_done: int, payload: Callable[[], dict[str, Any]]
    ) -> None:
        """Hand a mid-epoch resume checkpoint to the background writer (serialized now, so
        training goes on while it is written)."""
        if self.checkpointer is None:
            return
        self.writer.wait()
        data, checkpointer = serialize(payload()), self.checkpointer
        self.writer.submit(lambda: checkpointer.write_mid_epoch(data, epoch, step, batches_done))

    def drop_mid_epoch(self) -> None:
        """At the end of a run: the mid-epoch checkpoint is behind it (a resume from the
        trial must not train past where the run ended)."""
        if self.checkpointer is not None:
            self.writer.wait()
            self.checkpointer.drop_mid_epoch("the run ended")

    def save_unsaved(self, metric_name: str) -> None:
        """Write the in-memory snapshot of the last finished epoch, if there is one (after
        an interrupt), and apply retention."""
        self.writer.wait()
        if self.checkpointer is None or self.unsaved is None:
            return
        state, self.unsaved = self.unsaved, None
        metrics = state[ckpt.METRICS]
        self.checkpointer.store.save(
            state,
            state[ckpt.EPOCH],
            state[ckpt.GLOBAL_STEP],
            metrics.get(metric_name),
            metrics,
        )
        self.checkpointer.apply_policy()

    def latest_resume(self) -> Path | None:
        if self.checkpointer is None:
            return None
        self.writer.wait()
        latest = self.checkpointer.store.manifest.latest_resume_file()
        return self.directory / latest[0] if latest else None

    def best(self) -> Path | None:
        if self.checkpointer is None:
            return None
        self.writer.wait()
        best = self.checkpointer.store.manifest.best()
        return self.directory / best.file if best else None

    def close(self) -> None:
        """Wait for a pending write (its error is the caller's) and stop the writer."""
        self.writer.close()


# where a run's tracking goes: a resume takes these from the user, never from the trial
_ROUTING = (
    "backend",
    "mlflow_tracking_uri",
    "vault_addr",
    "vault_token_path",
    "experiment_name",
    "allow_insecure_http",
)


def resume_command(checkpoint: Path | str, tracking: TrackingConfig) -> str:
    """The command that resumes from `checkpoint` with the same tracking: a resume takes
    tracking.* from the user (not from the trial), so settings that differ from the defaults
    are spelled out (a URI's password as ***: give it again, or through the environment)."""
    default = TrackingConfig()
    extra = []
    for name in _ROUTING:
        value = getattr(tracking, name)
        if value != getattr(default, name):
            shown = str(value).lower() if isinstance(value, bool) else redact_url(str(value))
            extra.append(shlex.quote(f"tracking.{name}={shown}"))
    command = f"python -m dataaug_multi_both.cli.train --resume-from {shlex.quote(str(checkpoint))}"
    return " ".join([command, *extra])
