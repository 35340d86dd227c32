"""Credentials only over TLS or to loopback: the pure check, no connection anywhere."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.tracking.transport import (
    MLFLOW_CREDENTIAL_VARIABLES,
    is_loopback,
    require_secure_transport,
)

REMOTE_HTTP = "http://10.255.255.1:8200"  # never contacted: the check is pure
VAULT = {"vault_token_path": "secret/mlflow"}
TOKEN_ENV = {"MLFLOW_TRACKING_TOKEN": "t0k3n"}


def tracking(**values: Any) -> TrackingConfig:
    return dataclasses.replace(TrackingConfig(), **values)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("10.255.255.1", False),
        ("vault.example.com", False),
        ("127.0.0.1.nip.io", False),  # resolves to loopback, but DNS decides that, not us
        ("0x7f000001", False),
        ("", False),
    ],
)
def test_loopback_is_127_0_0_0_8_ipv6_1_and_localhost(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    "values",
    [
        {"vault_addr": "https://vault.example.com:8200", **VAULT},
        {"vault_addr": "http://127.0.0.1:8200", **VAULT},
        {"vault_addr": "http://localhost:8200", **VAULT},
        {"vault_addr": "http://[::1]:8200", **VAULT},
        {"mlflow_tracking_uri": "https://mlflow.example.com"},
        {"mlflow_tracking_uri": "http://127.0.0.1:5000"},
        {"mlflow_tracking_uri": "http://user:pw@localhost:5000"},
        {"mlflow_tracking_uri": ""},
        {"mlflow_tracking_uri": "sqlite:////tmp/mlflow.db"},
        {"mlflow_tracking_uri": "file:/tmp/mlruns"},
    ],
)
def test_https_loopback_and_local_stores_pass_silently(values: dict[str, str]) -> None:
    assert require_secure_transport(tracking(**values), TOKEN_ENV) == []


def test_plain_http_vault_on_another_host_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        require_secure_transport(tracking(vault_addr=REMOTE_HTTP, **VAULT), {})
    message = caught.value.message
    assert caught.value.exit_code == 2 and "\n" not in message
    assert "tracking.vault_addr" in message and "Vault token" in message
    assert "https://" in message and "tracking.allow_insecure_http=true" in message


@pytest.mark.parametrize(
    ("values", "env", "source"),
    [
        *[({}, {name: "x"}, name) for name in MLFLOW_CREDENTIAL_VARIABLES],
        ({"mlflow_tracking_uri": "http://bob:pw-9931@10.255.255.1:5000"}, {}, "user:password@"),
        ({"vault_addr": "https://vault.example.com", **VAULT}, {}, "read from Vault"),
    ],
)
def test_mlflow_credentials_over_plain_http_to_another_host_are_refused(
    values: dict[str, str], env: dict[str, str], source: str
) -> None:
    config = tracking(**{"mlflow_tracking_uri": "http://10.255.255.1:5000", **values})
    with pytest.raises(ConfigError) as caught:
        require_secure_transport(config, env)
    message = caught.value.message
    assert "tracking.mlflow_tracking_uri" in message and source in message
    assert "pw-9931" not in message  # the URI's password is redacted


def test_blank_credential_variables_do_not_count() -> None:
    config = tracking(mlflow_tracking_uri="http://10.255.255.1:5000")
    warnings = require_secure_transport(config, {"MLFLOW_TRACKING_TOKEN": " "})
    assert len(warnings) == 1 and "no credentials are sent" in warnings[0]


def test_plain_http_mlflow_without_credentials_is_only_warned() -> None:
    config = tracking(mlflow_tracking_uri="http://mlflow.example.com:5000")
    (warning,) = require_secure_transport(config, {"UNRELATED": "1"})
    assert "tracking.mlflow_tracking_uri" in warning and "unencrypted" in warning
    assert "\n" not in warning


def test_allow_insecure_http_turns_each_refusal_into_a_warning() -> None:
    config = tracking(
        vault_addr=REMOTE_HTTP,
        mlflow_tracking_uri="http://10.255.255.1:5000",
        allow_insecure_http=True,
        **VAULT,
    )
    warnings = require_secure_transport(config, TOKEN_ENV)
    assert len(warnings) == 2
    assert "tracking.vault_addr" in warnings[0] and "tracking.mlflow_tracking_uri" in warnings[1]
    assert all("allowed by tracking.allow_insecure_http" in w for w in warnings)


def test_the_flag_is_off_by_default() -> None:
    assert TrackingConfig().allow_insecure_http is False
