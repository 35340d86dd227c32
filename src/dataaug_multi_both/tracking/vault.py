"""MLflow credentials from HashiCorp Vault (KV v2), set in this process only.

The secret may hold `token` (-> MLFLOW_TRACKING_TOKEN) or `username` and `password`
(-> MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD). The Vault token comes from
VAULT_TOKEN, or from the file named by VAULT_TOKEN_FILE. No secret value ever appears in a
message. Redirects are not followed: requests would resend X-Vault-Token to wherever a 3xx
points, another host included.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataaug_multi_both.errors import TrackingError
from dataaug_multi_both.redaction import redact_text as redact


def vault_token() -> str:
    token = os.environ.get("VAULT_TOKEN", "").strip()
    if token:
        return token
    token_file = os.environ.get("VAULT_TOKEN_FILE", "").strip()
    if token_file:
        try:
            return Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TrackingError(
                f"cannot read the Vault token file {token_file}: {exc.strerror}"
            ) from None
    raise TrackingError(
        "tracking.vault_addr is set but neither VAULT_TOKEN nor VAULT_TOKEN_FILE is"
    )


def split_secret_path(secret_path: str) -> tuple[str, str]:
    """'secret/mlflow' or 'secret/data/mlflow' -> ('secret', 'mlflow')."""
    mount, _, path = secret_path.strip("/").partition("/")
    path = path.removeprefix("data/")
    if not mount or not path:
        raise TrackingError(
            f"tracking.vault_token_path must look like <mount>/<path>, got {secret_path!r}"
        )
    return mount, path


def read_mlflow_credentials(
    vault_addr: str, secret_path: str, timeout: float = 10.0
) -> dict[str, str]:
    """Environment variables for MLflow from the KV v2 secret at `secret_path`."""
    import hvac
    import requests

    mount, path = split_secret_path(secret_path)
    client = hvac.Client(
        url=vault_addr, token=vault_token(), timeout=timeout, allow_redirects=False
    )
    try:
        response = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except hvac.exceptions.InvalidPath:
        raise TrackingError(
            f"Vault at {redact(vault_addr)} has no secret at {secret_path}"
        ) from None
    except hvac.exceptions.Forbidden:
        raise TrackingError(
            f"Vault at {redact(vault_addr)} denied access to {secret_path} (check the token)"
        ) from None
    except (requests.exceptions.RequestException, hvac.exceptions.VaultError) as exc:
        raise TrackingError(
            f"Vault at {redact(vault_addr)} is unreachable or failed ({type(exc).__name__})"
        ) from None
    if isinstance(response, requests.Response) and response.is_redirect:
        raise TrackingError(
            f"Vault at {redact(vault_addr)} answered with a redirect ({response.status_code}), which is "
            "not followed (the token would go with it); set tracking.vault_addr to the address "
            "that serves the secret"
        )
    data = (response if isinstance(response, dict) else {}).get("data", {}).get("data") or {}
    if data.get("token"):
        return {"MLFLOW_TRACKING_TOKEN": str(data["token"])}
    if data.get("username") and data.get("password"):
        return {
            "MLFLOW_TRACKING_USERNAME": str(data["username"]),
            "MLFLOW_TRACKING_PASSWORD": str(data["password"]),
        }
    raise TrackingError(
        f"the Vault secret {secret_path} holds neither 'token' nor 'username'/'password'"
    )


def apply_credentials(credentials: dict[str, str]) -> None:
    os.environ.update(credentials)
