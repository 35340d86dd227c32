"""Reading files that may have been edited or planted: manifests, study records, locks,
configs inside artifacts. Every reader here is total: any content ends in the caller's
error class with one line naming the file, never in a traceback (deep nesting, bad UTF-8,
wrong types, a file too large to be what it claims)."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from dataaug_multi_both.errors import first_line

MAX_BYTES = 64 * 1024 * 1024  # far above any manifest, study record or config we write


def read_json(path: Path, error: type[Exception], max_bytes: int = MAX_BYTES) -> Any:
    """The JSON document in `path`; `error(message)` when it cannot be read or parsed."""
    return _parse(path, error, max_bytes, json.loads, "JSON")


def read_yaml(path: Path, error: type[Exception], max_bytes: int = MAX_BYTES) -> Any:
    """The YAML document in `path` (safe loader, no Python objects); `error(message)` when it
    cannot be read or parsed."""
    import yaml

    def load(text: str) -> Any:
        try:
            _require_small_expansion(yaml.compose(text, Loader=yaml.SafeLoader))
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(first_line(exc)) from None

    return _parse(path, error, max_bytes, load, "YAML")


def require_mapping(value: Any, path: Path, error: type[Exception]) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise error(f"{path} is not a mapping of names to values")
    return value


def _parse(path: Path, error: type[Exception], max_bytes: int, parse: Any, kind: str) -> Any:
    try:
        data = _read_regular_file(path, max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > max_bytes:
        raise error(f"{path} is larger than {max_bytes // (1024 * 1024)} MB: not ours")
    try:
        return parse(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text") from None
    except RecursionError:
        raise error(f"{path} is nested too deeply to be {kind} we wrote") from None
    except ValueError as exc:
        raise error(f"{path} is not valid {kind}: {str(exc)[:200]}") from None


def open_regular_file(path: Path, follow_symlinks: bool = True) -> BinaryIO:
    """`path` opened for reading; OSError unless it is a regular file (a FIFO or device planted
    under the name would block or never end; O_NONBLOCK keeps the open itself from waiting)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return os.fdopen(fd, "rb")


def _read_regular_file(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of `path`, a regular file."""
    with open_regular_file(path) as handle:
        return handle.read(limit)


MAX_YAML_NODES = 100_000  # a config has a few hundred; aliases may not multiply that


def _require_small_expansion(root: Any) -> None:
    """Refuse a YAML document whose aliases expand it past MAX_YAML_NODES ("billion laughs")
    or into a cycle, before anything is built from it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ValueError("a YAML alias refers to itself")
        open_nodes.add(key)
        children = node.value if isinstance(node.value, list) else []
        total = 1
        for child in children:
            for part in child if isinstance(child, tuple) else (child,):
                total += size(part)
                if total > MAX_YAML_NODES:
                    raise ValueError(f"more than {MAX_YAML_NODES} values once aliases expand")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    if root is not None:
        size(root)
