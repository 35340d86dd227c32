"""A configuration as it may be shown or written (config.yaml, checkpoints, MLflow params,
error messages): URLs that can carry a password appear with the password as `***`."""

from __future__ import annotations

import copy
import reprlib
from typing import Any

from dataaug_multi_both.redaction import redact_text, redact_url

# dotted keys whose value is a URL that may hold credentials
SECRET_URL_KEYS = ("tracking.mlflow_tracking_uri", "tracking.vault_addr", "study.storage")


def public_config(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` (a config as nested dicts) with every secret-bearing URL redacted."""
    public = copy.deepcopy(data)
    for dotted in SECRET_URL_KEYS:
        *parents, leaf = dotted.split(".")
        node: Any = public
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(leaf), str):
            node[leaf] = redact_url(node[leaf])
    return public


def shown_value(key: str, value: Any) -> str:
    """`value` as an error message may show it: a secret-bearing key's URL redacted, any
    other text scrubbed of credentials, long values cut."""
    if isinstance(value, str) and key in SECRET_URL_KEYS:
        return repr(redact_url(value))[:200]
    return redact_text(_short.repr(value))[:200]


_short = reprlib.Repr()  # bounded: a huge (or alias-expanded) value is never rendered whole
_short.maxstring, _short.maxother, _short.maxlevel = 160, 160, 3
