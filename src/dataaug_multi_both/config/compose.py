"""Compose a configuration file with Hydra's compose API, then validate it.

Precedence, lowest first: the bundled defaults a file inherits (`defaults: [train, _self_]`),
the file itself, trailing Hydra overrides (`trainer.batch_size=8`), command-line flags.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.config.suggest import mapping_keys, schema_keys, unknown_key_hint
from dataaug_multi_both.errors import ConfigError, first_line
from dataaug_multi_both.redaction import redact_text, redact_url
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


def shadowing_note(config: str | None, default_name: str) -> str | None:
    """Which file is loaded, when `configs/<default_name>` in the working directory takes
    the place of the bundled one (None when `--config` is given or nothing shadows it)."""
    if config is not None:
        return None
    chosen = resolve_config_path(None, default_name)
    if chosen == bundled_config_path(default_name).resolve():
        return None  # the bundled file itself (a checkout's configs/ links to it)
    return f"note: loading {chosen} (./configs/{default_name}), not the bundled {default_name}"


def compose_dict(
    config_path: Path, overrides: list[str], known: Collection[str] = ()
) -> dict[str, Any]:
    """Compose `config_path` with Hydra overrides into a plain dict (no validation).
    Interpolations that read the environment (`${oc.env:...}`) are refused: their values
    would end up in MLflow, config.yaml and every checkpoint. An override of a key the file
    does not have names the `known` key it probably meant."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    refuse_environment_interpolation()
    overrides = [_into_mapping(o) for o in overrides]
    try:
        with initialize_config_dir(config_dir=str(config_path.parent), version_base=None):
            cfg = compose(
                config_name=config_path.stem, overrides=[_SEARCH_PATH_OVERRIDE, *overrides]
            )
        reading_env = _env_interpolations(OmegaConf.to_container(cfg, resolve=False))
        if reading_env:
            given = [k for k, _ in override_keys([o for o in overrides if "oc.env" in o])]
            where = (
                "override" if set(reading_env) <= set(given) else f"{config_path.name} or override"
            )
            raise ConfigError(f"{', '.join(reading_env)} ({where}): {_ENV_REFUSED}")
        data = OmegaConf.to_container(cfg, resolve=True)
    except RecursionError:  # Hydra follows a file that lists itself in its defaults forever
        raise ConfigError(
            f"{config_path} lists itself in its defaults (`- {config_path.stem}` finds this "
            f"file before the bundled {config_path.name}): give it another name and pass it "
            f"with --config, or drop `- {config_path.stem}` from its defaults (keys it leaves "
            "out take the schema's defaults)"
        ) from None
    except (HydraException, OmegaConfBaseException) as exc:
        missing = _MISSING_KEY.search(first_line(exc))
        if missing and known:
            raise ConfigError(missing_key_message(missing.group(1), known, config_path)) from None
        raise ConfigError(f"cannot compose {config_path}: {_cause(exc)}") from None
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return {str(k): v for k, v in data.items()}


def _into_mapping(override: str) -> str:
    """`trainer.lr_scheduler_kwargs={num_cycles: 2}` or `...kwargs.num_cycles=2`: a
    mapping-valued key takes new entries, as Trainer's `lr_scheduler_kwargs` does; Hydra
    wants `++` for that (the bundled file has it empty)."""
    key = override.split("=", 1)[0]
    if key[:1] in "+~" or "=" not in override:
        return override
    if any(key == k or key.startswith(f"{k}.") for k in mapping_keys(TrainConfig)):
        return f"++{override}"
    return override


# Hydra's "Could not override 'trainer.lr'." and "Could not delete from config. 'x' does not exist."
_MISSING_KEY = re.compile(r"^Could not (?:override|delete from config\.) '([^']+)'")
# sections whose entries are added, not only set: `+search_space.trainer.weight_decay={...}`
OPEN_SECTIONS = ("search_space",)
# the fields of a search-space entry (`search_space.x.choices=...` sets one of them)
DISTRIBUTION_FIELDS = ("type", "choices", "low", "high", "step", "log")


def missing_key_message(key: str, known: Collection[str], config_path: Path) -> str:
    """What to say when an override names a key `config_path` does not have."""
    section = key.split(".")[0]
    if section in OPEN_SECTIONS:
        entry, _, field = key.rpartition(".")
        if field not in DISTRIBUTION_FIELDS:  # the entry itself, not one of its fields
            entry, field = key, ""
        example = (
            "{type: categorical, choices: [a, b]}"
            if field == "choices"
            else "{type: uniform, low: 0.0, high: 0.1}"
        )
        return (
            f"{entry} is not in {config_path.name}: a new search-space entry is given whole, "
            f"with a leading +, e.g. '+{entry}={example}'"
        )
    if key in known or any(key.startswith(f"{k}.") for k in known):  # left out of the file, or
        # an entry of a mapping-valued key (trainer.lr_scheduler_kwargs.num_cycles)
        return f"{key} is not set in {config_path.name}: add it with +{key}=VALUE"
    return f"unknown configuration key {key}{unknown_key_hint(key, known)}"


_ENV_REFUSED = (
    "${oc.env:...} is not allowed in configurations or overrides: values read from the "
    "environment would be written to config.yaml, checkpoints and MLflow; pass the value itself"
)


def _env_interpolations(node: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose (unresolved) value reads the environment."""
    if isinstance(node, dict):
        return [k for key, v in node.items() for k in _env_interpolations(v, f"{prefix}{key}.")]
    if isinstance(node, list):
        return [k for i, v in enumerate(node) for k in _env_interpolations(v, f"{prefix}{i}.")]
    return [prefix.rstrip(".")] if isinstance(node, str) and "oc.env" in node else []


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
    """An artifact's settings continued with the user's: where credentials go
    (`CREDENTIAL_ROUTING`: the tracking URI, the Vault address and token path, the study
    storage) always comes from the user's own configuration, and every key the user's
    overrides set takes the user's composed value."""
    merged = copy.deepcopy(artifact)
    for dotted in CREDENTIAL_ROUTING:
        _place(merged, dotted.split("."), _lookup(user, dotted.split(".")))
    for key, deleted in override_keys(overrides):
        parts = key.split(".")
        _place(merged, parts, _ABSENT if deleted else _lookup(user, parts))
    return merged


# the settings that decide where credentials are sent (the Vault token, MLflow credentials,
# libpq's password): never taken from an artifact
CREDENTIAL_ROUTING = (
    "tracking.mlflow_tracking_uri",
    "tracking.vault_addr",
    "tracking.vault_token_path",
    "tracking.allow_insecure_http",
    "study.storage",
)
_ABSENT = object()


def _place(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set `parts` to a copy of `value` in `data` (nested dicts made), or remove it (_ABSENT)."""
    if value is _ABSENT:
        _remove(data, parts)
        return
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


def tracking_note(artifact: Path, merged: Mapping[str, Any]) -> str | None:
    """A one-line note naming the artifact's credential routing that was not used."""
    try:
        recorded = artifact_config(artifact)
    except ConfigError:
        return None
    differing = []
    for dotted in CREDENTIAL_ROUTING:
        was, now = _lookup(recorded, dotted.split(".")), _lookup(merged, dotted.split("."))
        if was is not _ABSENT and was != (None if now is _ABSENT else now):
            shown_now = None if now is _ABSENT else now
            differing.append(f"{dotted}: recorded {_shown(was)}, used {_shown(shown_now)}")
    if not differing:
        return None
    return (
        f"note: where credentials go is never taken from {artifact.name} "
        f"({'; '.join(differing)}); set it in your config or as overrides"
    )


def _shown(value: Any) -> str:
    return repr(redact_url(value)) if isinstance(value, str) else repr(value)


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
    data = compose_dict(path, overrides, schema_keys(TrainConfig))
    if artifact is not None:
        data = layered_on_artifact(artifact_config(artifact), data, overrides)
    data = apply_values(data, flag_values)
    parsed = TrainConfig.from_dict(data)
    return dataclasses.replace(parsed, seeds=parsed.seeds.filled(42 if seed is None else seed))


def config_fingerprint(data: Mapping[str, Any]) -> str:
    """SHA256 of a canonical JSON rendering of `data` (key order does not matter)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
