"""Where tracking goes: the config, else MLFLOW_TRACKING_URI, else the local store (pure)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.tracking.destination import (
    CONFIG_KEY,
    ENV_URI,
    LOCAL_STORE,
    tracking_destination,
)
from dataaug_multi_both.tracking.transport import require_secure_transport

SECRET = "s3cr3t-pw"


def test_the_config_wins_over_the_environment(tmp_path: Path) -> None:
    config = dataclasses.replace(TrackingConfig(), mlflow_tracking_uri="http://127.0.0.1:1")
    found = tracking_destination(config, tmp_path, {ENV_URI: "http://127.0.0.1:2"})
    assert (found.uri, found.source, found.shown) == (
        "http://127.0.0.1:1",
        CONFIG_KEY,
        "http://127.0.0.1:1",
    )


def test_the_environment_then_the_local_store(tmp_path: Path) -> None:
    found = tracking_destination(
        TrackingConfig(), tmp_path, {ENV_URI: f"http://u:{SECRET}@127.0.0.1:5"}
    )
    assert found.source == ENV_URI and SECRET not in found.shown
    assert found.shown.endswith("@127.0.0.1:5 (from MLFLOW_TRACKING_URI)")
    assert found.applied_to(TrackingConfig()).mlflow_tracking_uri == found.uri
    local = tracking_destination(TrackingConfig(), tmp_path, {ENV_URI: "  "})
    assert local.source == LOCAL_STORE
    assert local.uri == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"


def test_a_uri_from_the_environment_meets_the_configs_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        tracking_destination(TrackingConfig(), tmp_path, {ENV_URI: f"ftp://u:{SECRET}@h/x"})
    assert "invalid value for MLFLOW_TRACKING_URI" in refused.value.message
    assert SECRET not in refused.value.message

    found = tracking_destination(
        TrackingConfig(), tmp_path, {ENV_URI: f"http://u:{SECRET}@10.1.2.3"}
    )
    with pytest.raises(ConfigError) as insecure:
        require_secure_transport(found.applied_to(TrackingConfig()), {}, found.source)
    assert insecure.value.message.startswith("MLFLOW_TRACKING_URI=http://")
    assert SECRET not in insecure.value.message
