"""Compose a configuration file with Hydra's compose API, then validate it.

Precedence, lowest first: the bundled defaults a file inherits (`defaults: [train, _self_]`),
the file itself, trailing Hydra overrides (`trainer.batch_size=8`), command-line flags.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError, first_line
from dataaug_multi_both.redaction import redact_text
from dataaug_multi_both.untrusted import read_yaml, require_mapping

BUNDLED_PACKAGE = "dataaug_multi_both.configs"
_SEARCH_PATH_OVERRIDE = f"hydra.searchpath=[pkg://{BUNDLED_PACKAGE}]"


def bundled_config_path(name: str) -> Path:
    """Path of a YAML file shipped inside the package (e.g. `train.yaml`)."""
    return Path(str(resources.files(BUNDLED_PACKAGE).joinpath(name)))


def resolve_config_path(config: str | None, default_name: str) -> Path:
    """The file to compose: `config` when given (must exist), else `configs/<default_name>`
    in the working directory, else the bundled copy."""
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config file not found: {config}")
        return path.resolve()
    local = Path("configs") / default_name
    return local.resolve() if local.is_file() else bundled_config_path(default_name)


def compose_dict(config_path: Path, overrides: list[str]) -> dict[str, Any]:
    """Compose `config_path` with Hydra overrides into a plain dict (no validation).
    Interpolations that read the environment (`${oc.env:...}`) are refused: their values
    would end up in MLflow, config.yaml and every checkpoint."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    refuse_environment_interpolation()
    try:
        with initialize_config_dir(config_dir=str(config_path.parent), version_base=None):
            cfg = compose(
                config_name=config_path.stem, overrides=[_SEARCH_PATH_OVERRIDE, *overrides]
            )
        data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose {config_path}: {_cause(exc)}") from None
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return {str(k): v for k, v in data.items()}


_ENV_REFUSED = (
    "${oc.env:...} is not allowed in configurations or overrides: values read from the "
    "environment would be written to config.yaml, checkpoints and MLflow; pass the value itself"
)


def _refuse_env(*_: Any, **__: Any) -> Any:
    raise ValueError(_ENV_REFUSED)


def refuse_environment_interpolation() -> None:
    """Replace OmegaConf's `oc.env` resolver (the one resolver that reads the environment)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("oc.env", _refuse_env, replace=True, use_cache=False)


def _cause(exc: BaseException) -> str:
    """The first line of a composition error, or our refusal when a resolver raised it."""
    seen: BaseException | None = exc
    while seen is not None:
        if _ENV_REFUSED in str(seen):
            return _ENV_REFUSED
        seen = seen.__cause__ or seen.__context__
    return redact_text(first_line(exc))  # Hydra repeats the override, a password included


def artifact_config(path: Path) -> dict[str, Any]:
    """A `config.yaml` written into a trial or study directory, read back as data: plain YAML
    (safe loader; no Hydra defaults, no interpolation), which must be a mapping."""
    return require_mapping(
        read_yaml(path, ConfigError, max_bytes=4 * 1024 * 1024), path, ConfigError
    )


def override_keys(overrides: list[str]) -> list[tuple[str, bool]]:
    """(dotted key, deleted) of each Hydra override, in order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"invalid override: {redact_text(first_line(exc))}") from None
    return [(o.key_or_group, o.is_delete()) for o in parsed]


def layered_on_artifact(
    artifact: dict[str, Any], user: dict[str, Any], overrides: list[str]
) -> dict[str, Any]:
    """An artifact's settings continued with the user's: `tracking.*` always comes from the
    user's own configuration (an artifact must not say where credentials are sent), and every
    key the user's overrides set takes the user's composed value."""
    merged = copy.deepcopy(artifact)
    merged[TRACKING] = copy.deepcopy(user.get(TRACKING, {}))
    for key, deleted in override_keys(overrides):
        parts = key.split(".")
        value = _lookup(user, parts)
        if deleted or value is _ABSENT:
            _remove(merged, parts)
        else:
            apply_values(merged, {key: copy.deepcopy(value)})
    return merged


TRACKING = "tracking"
_ABSENT = object()


def tracking_note(artifact: Path, merged: Mapping[str, Any]) -> str | None:
    """A one-line note when the artifact's tracking settings differ from the ones used now."""
    try:
        recorded = artifact_config(artifact).get(TRACKING)
    except ConfigError:
        return None
    used = merged.get(TRACKING) or {}
    if not isinstance(recorded, dict):
        return None
    keys = ("backend", "mlflow_tracking_uri", "vault_addr", "vault_token_path")
    differing = [k for k in keys if recorded.get(k, "") != used.get(k, "")]
    if not differing:
        return None
    return (
        f"note: {artifact} recorded other tracking settings ({', '.join(differing)}); "
        "tracking.* comes from your configuration and overrides, never from an artifact"
    )


def _lookup(data: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def _remove(data: dict[str, Any], parts: list[str]) -> None:
    node = _lookup(data, parts[:-1])
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def apply_values(data: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys (`trainer.max_epochs`) in a nested dict; None values are skipped."""
    for dotted, value in values.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


def load_train_config(
    config: str | None,
    overrides: list[str],
    flag_values: Mapping[str, Any],
    seed: int | None = None,
    artifact: Path | None = None,
) -> TrainConfig:
    """Compose, apply flags, fill unset seeds from `seed` (default 42), validate. With
    `artifact` (a trial's config.yaml), continue that configuration (`layered_on_artifact`)."""
    path = resolve_config_path(config, "train.yaml")
    data = compose_dict(path, overrides)
    if artifact is not None:
        data = layered_on_artifact(artifact_config(artifact), data, overrides)
    data = apply_values(data, flag_values)
    parsed = TrainConfig.from_dict(data)
    return dataclasses.replace(parsed, seeds=parsed.seeds.filled(42 if seed is None else seed))


def config_fingerprint(data: Mapping[str, Any]) -> str:
    """SHA256 of a canonical JSON rendering of `data` (key order does not matter)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
