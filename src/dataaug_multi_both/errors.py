"""One exception hierarchy; each class carries the exit code of the command contract.

Exit codes (train): 0 success, 1 training error, 2 configuration error,
3 data loading error (dataset or model not found / malformed), 4 storage error,
5 tracking error. Commands with their own code tables (evaluate_study, cleanup,
list_*) map these classes in their CLI module; the class is the single source of
what kind of failure happened.
"""

from __future__ import annotations


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
    """SIGINT/SIGTERM arrived; the run stopped at a safe point."""

    exit_code = 130
