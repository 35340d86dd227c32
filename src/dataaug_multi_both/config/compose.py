"""Compose a configuration file with Hydra's compose API, then validate it.

Precedence, lowest first: the bundled defaults a file inherits (`defaults: [train, _self_]`),
the file itself, trailing Hydra overrides (`trainer.batch_size=8`), command-line flags.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError, first_line

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
    """Compose `config_path` with Hydra overrides into a plain dict (no validation)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(config_path.parent), version_base=None):
            cfg = compose(
                config_name=config_path.stem, overrides=[_SEARCH_PATH_OVERRIDE, *overrides]
            )
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose {config_path}: {first_line(exc)}") from exc
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return {str(k): v for k, v in data.items()}


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
) -> TrainConfig:
    """Compose, apply flags, fill unset seeds from `seed` (default 42), validate."""
    path = resolve_config_path(config, "train.yaml")
    data = apply_values(compose_dict(path, overrides), flag_values)
    parsed = TrainConfig.from_dict(data)
    return dataclasses.replace(parsed, seeds=parsed.seeds.filled(42 if seed is None else seed))


def config_fingerprint(data: Mapping[str, Any]) -> str:
    """SHA256 of a canonical JSON rendering of `data` (key order does not matter)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
