"""Building typed config dataclasses from plain mappings, and their validation helpers:
unknown keys, wrong types and out-of-range values are a `ConfigError` naming the key, the
value and what is allowed. Used by the training schema and the HPO config alike."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from dataaug_multi_both.config.public import shown_value
from dataaug_multi_both.config.suggest import unknown_key_hint
from dataaug_multi_both.errors import ConfigError


def validate_tree(node: Any, prefix: str) -> None:
    for f in dataclasses.fields(node):
        child = getattr(node, f.name)
        if dataclasses.is_dataclass(child):
            validate_tree(child, f"{prefix}.{f.name}")
    node.validate(prefix)


def require(ok: bool, key: str, value: Any, allowed: Any) -> None:
    if not ok:
        shown = shown_value(key, value)
        raise ConfigError(f"invalid value for {key}: {shown} (allowed: {_allowed_text(allowed)})")


def require_range(value: Any, low: float, high: float, key: str) -> None:
    """`low <= value <= high`, else a ConfigError naming the key and the range."""
    require(low <= value <= high, key, value, f"{low}..{high}")


def _allowed_text(allowed: Any) -> str:
    if isinstance(allowed, tuple | list):
        return ", ".join(str(a) for a in allowed)
    return str(allowed)


def build(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass `cls` from a mapping, checking key names and value types."""
    where = prefix or "the configuration"
    if not isinstance(data, dict):
        shown = shown_value(where, data)
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}: {shown}")
    if not all(isinstance(k, str) for k in data):
        raise ConfigError(f"{where} has a key that is not a name")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        dotted = [f"{prefix}.{k}".lstrip(".") for k in unknown]
        siblings = [f"{prefix}.{k}".lstrip(".") for k in known]
        names = ", ".join(f"{k}{unknown_key_hint(k, siblings, listing=False)}" for k in dotted)
        raise ConfigError(
            f"unknown configuration key(s): {names} (known under {where}: {', '.join(sorted(known))})"
        )
    values = {}
    for name, raw in data.items():
        key = f"{prefix}.{name}".lstrip(".")
        values[name] = _coerce(hints[name], raw, key)
    return cls(**values)


def _coerce(hint: Any, raw: Any, key: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, raw, key)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for option in inner[:-1]:  # the first type that takes the value
            try:
                return _coerce(option, raw, key)
            except ConfigError:
                continue
        try:
            return _coerce(inner[-1], raw, key)
        except ConfigError:
            if len(inner) == 1:
                raise
            allowed = " or ".join(_type_name(a) for a in inner)
            shown = shown_value(key, raw)
            raise ConfigError(f"invalid value for {key}: {shown} (allowed: {allowed})") from None
    if origin is list:
        if not isinstance(raw, list | tuple):
            raise ConfigError(f"invalid value for {key}: {shown_value(key, raw)} (allowed: a list)")
        return [_coerce(args[0], item, key) for item in raw]
    if origin is dict:
        if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
            shown = shown_value(key, raw)
            raise ConfigError(f"invalid value for {key}: {shown} (allowed: a mapping of names)")
        return {name: _coerce(args[1], item, f"{key}.{name}") for name, item in raw.items()}
    if hint is bool:
        if isinstance(raw, bool):
            return raw
    elif hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif hint is float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            try:
                return float(raw)
            except OverflowError:  # an integer of hundreds of digits
                raise ConfigError(f"invalid value for {key}: too large for a number") from None
    elif hint is str and isinstance(raw, str):
        return raw
    shown = shown_value(key, raw)
    raise ConfigError(f"invalid value for {key}: {shown} (allowed: {_type_name(hint)})")


def _type_name(hint: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )
