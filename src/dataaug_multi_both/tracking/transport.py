"""Credentials travel only over TLS, or to this machine.

The Vault token, and MLflow's token or username/password (from Vault, from the environment,
or a user:password@ in the URI), are refused over plain http:// to any host but a loopback
one (127.0.0.0/8, ::1, localhost), before any connection is made.
`tracking.allow_insecure_http: true` turns the refusal into a warning printed at every start.
A plain-http MLflow server that gets no credentials is only warned about.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from dataaug_multi_both.config.schema import TrackingConfig
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.tracking.retry import redact

MLFLOW_CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)
_FIX = "use https:// (or set tracking.allow_insecure_http=true to accept the risk)"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; a name that merely resolves there does not count."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_cleartext_remote(url: str) -> bool:
    """True for an http:// URL whose host is not loopback (what it sends, anyone can read)."""
    parts = urlsplit(url.strip())
    return parts.scheme.lower() == "http" and not is_loopback(parts.hostname or "")


def _mlflow_credentials_from(config: TrackingConfig, env: Mapping[str, str]) -> str:
    """Where MLflow's credentials would come from, or "" when it sends none."""
    if config.vault_addr and config.vault_token_path:
        return "read from Vault"
    named = [name for name in MLFLOW_CREDENTIAL_VARIABLES if env.get(name, "").strip()]
    if named:
        return f"from {', '.join(named)}"
    if urlsplit(config.mlflow_tracking_uri).username:
        return "the user:password@ in the URI"
    return ""


def require_secure_transport(
    config: TrackingConfig, env: Mapping[str, str], uri_key: str = "tracking.mlflow_tracking_uri"
) -> list[str]:
    """The one-line warnings to print at start; raises ConfigError (naming the key and the
    fix) where a credential would cross the network unencrypted, unless
    `config.allow_insecure_http`. `uri_key`: where `config.mlflow_tracking_uri` came from
    (the config key, or MLFLOW_TRACKING_URI). Pure: reads `config` and `env`, connects to
    nothing."""
    refused: list[str] = []
    warnings: list[str] = []
    if config.vault_addr and config.vault_token_path and is_cleartext_remote(config.vault_addr):
        refused.append(
            f"tracking.vault_addr={redact(config.vault_addr)} is plain http:// to a host that "
            "is not this machine: the Vault token would be sent unencrypted"
        )
    uri = config.mlflow_tracking_uri
    if uri and is_cleartext_remote(uri):
        source = _mlflow_credentials_from(config, env)
        where = f"{uri_key}={redact(uri)} is plain http:// to a host that is not this machine"
        if source:
            refused.append(f"{where}: MLflow credentials ({source}) would be sent unencrypted")
        else:
            warnings.append(f"{where}: run data travels unencrypted (no credentials are sent)")
    if refused and not config.allow_insecure_http:
        raise ConfigError(f"{refused[0]}; {_FIX}")
    allowed = [f"{reason} (allowed by tracking.allow_insecure_http)" for reason in refused]
    return allowed + warnings
