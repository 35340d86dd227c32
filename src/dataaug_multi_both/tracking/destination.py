"""Where a run's tracking goes: `tracking.mlflow_tracking_uri`, else MLflow's own
`MLFLOW_TRACKING_URI` from the environment, else a local SQLite store next to the experiments
it describes. A URI from the environment passes the same checks as a configured one (the
schemes allowed; the credential rules of `transport`), and any password in it is redacted
wherever it is shown. Pure: reads the config and the `env` mapping it is given."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.tracking.retry import redact

CONFIG_KEY = "tracking.mlflow_tracking_uri"
ENV_URI = "MLFLOW_TRACKING_URI"
LOCAL_STORE = "local store"


@dataclass(frozen=True)
class Destination:
    uri: str  # as MLflow is given it: may hold a password, never shown as is
    source: str  # CONFIG_KEY, ENV_URI or LOCAL_STORE

    @property
    def shown(self) -> str:
        """The URI without credentials, saying where it came from when not the config."""
        where = f" (from {ENV_URI})" if self.source == ENV_URI else ""
        return f"{redact(self.uri)}{where}"

    def applied_to(self, config: TrackingConfig) -> TrackingConfig:
        """`config` with this URI, for the checks that read `mlflow_tracking_uri`."""
        if self.source == LOCAL_STORE:
            return config
        return dataclasses.replace(config, mlflow_tracking_uri=self.uri)


def tracking_destination(
    config: TrackingConfig, experiments_dir: Path, env: Mapping[str, str]
) -> Destination:
    """The configured URI; else `MLFLOW_TRACKING_URI` (a ConfigError, exit 2, when it is not
    one the config would accept); else `sqlite:///{experiments_dir}/mlflow.db`."""
    if config.mlflow_tracking_uri:
        return Destination(config.mlflow_tracking_uri, CONFIG_KEY)
    from_env = env.get(ENV_URI, "").strip()
    if from_env:
        try:
            dataclasses.replace(config, mlflow_tracking_uri=from_env).validate("tracking")
        except ConfigError as exc:  # the same rule, naming where the value came from
            named = f"{ENV_URI} (from the environment: {CONFIG_KEY} is empty)"
            raise ConfigError(redact(exc.message).replace(CONFIG_KEY, named)) from None
        return Destination(from_env, ENV_URI)
    return Destination(f"sqlite:///{(experiments_dir / 'mlflow.db').resolve()}", LOCAL_STORE)
