"""One exception hierarchy, and one table per command of which exception exits with which
code (the command contract). A class carries its usual code; a command's table overrides it
where that command numbers failures differently; a signal is always 128 + its number.

| command | 0 | 1 | 2 | 3 | 4 | 5 |
| --- | --- | --- | --- | --- | --- | --- |
| train | success | training error | configuration | data / model loading | storage | tracking |
| hpo | done | some trials failed | configuration | study storage (or data at set-up) | disk | MLflow |
| evaluate_study | success | evaluation error | no study / no complete trial | no checkpoint verifies | split cannot be loaded | |
| cleanup, list_studies, list_checkpoints | success | any error | bad flags or scope | | | |
"""

from __future__ import annotations

import signal


class DataAugError(Exception):
    """Base of every expected error: a one-line message and an exit code, no traceback."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TrainingError(DataAugError):
    """Training failed: out of memory, NaN/inf loss, divergence."""

    exit_code = 1


class ConfigError(DataAugError):
    """A configuration value, flag or override is invalid."""

    exit_code = 2


class TrialInUse(ConfigError):
    """Another live process holds the trial's lock (train exit 2)."""


class DataLoadError(DataAugError):
    """The dataset or the model cannot be loaded, or the data is malformed."""

    exit_code = 3


class StorageError(DataAugError):
    """Disk full, below the free-space threshold, or no checkpoint verifies."""

    exit_code = 4


class TrackingError(DataAugError):
    """The MLflow tracking server or Vault cannot be reached or refused us."""

    exit_code = 5


class Interrupted(DataAugError):
    """SIGINT/SIGTERM arrived; the run stopped at a safe point. Exit 128 + the signal."""

    exit_code = 128 + signal.SIGINT

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class TrialsFailed(DataAugError):
    """A study ended with some trials failed (partial success; hpo exit 1)."""

    exit_code = 1


class StudyStorageError(DataAugError):
    """The study storage cannot be created, reached or read (hpo exit 3)."""

    exit_code = 3


class StudyNotFoundError(DataAugError):
    """No study at that path, or no complete trial (evaluate_study exit 2)."""

    exit_code = 2


class CheckpointUnavailableError(DataAugError):
    """The best trial has no retained checkpoint that verifies (evaluate_study exit 3)."""

    exit_code = 3


class EvaluationDataError(DataLoadError):
    """The split cannot be loaded for evaluation (evaluate_study exit 4)."""

    exit_code = 4


class ReportWriteError(DataAugError):
    """The evaluation report or its plots cannot be written (evaluate_study exit 1)."""

    exit_code = 1


class ScopeError(DataAugError):
    """The directory to clean does not exist or may not be cleaned (cleanup exit 2)."""

    exit_code = 2


class OutputWriteError(DataAugError):
    """`predict`'s output or `export`'s directory cannot be written."""

    exit_code = 4


# Per command, the classes whose code differs from their own, most specific first.
_ANY_ERROR_IS_1: dict[type[DataAugError], int] = {ConfigError: 2, ScopeError: 2, DataAugError: 1}
EXIT_CODES: dict[str, dict[type[DataAugError], int]] = {
    "train": {},
    "hpo": {},
    "evaluate_study": {
        StudyNotFoundError: 2,
        StudyStorageError: 2,
        CheckpointUnavailableError: 3,
        EvaluationDataError: 4,
        ConfigError: 2,
        DataAugError: 1,
    },
    "cleanup": _ANY_ERROR_IS_1,
    "list_studies": _ANY_ERROR_IS_1,
    "list_checkpoints": _ANY_ERROR_IS_1,
    # their own codes: 1 inference, 2 flags/columns, 3 input or model source, 4 output
    # a study that is not there is a model source that does not exist: 3, as a checkpoint
    "predict": {StudyNotFoundError: 3, StudyStorageError: 3},
    "export": {StudyNotFoundError: 3, StudyStorageError: 3},
}


def exit_code_for(command: str, error: DataAugError) -> int:
    """The exit code of `error` in `command`; an interrupt is always 128 + its signal."""
    if isinstance(error, Interrupted):
        return error.exit_code
    table = EXIT_CODES[command]
    return next((code for cls, code in table.items() if isinstance(error, cls)), error.exit_code)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
