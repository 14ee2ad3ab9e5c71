"""Config as data: the strict serialiser of the hub → build-service config (pure: no I/O).

`fancy_env.setup(c)` writes the service's config into a 0600 JSON file. JSON alone would turn
a set into a string (`json.dumps(..., default=str)` gave `"{'staff'}"`) and silently carry
whatever object it was given as its `repr`. `dumps` carries exactly:

- `str`, `int`, `float` (finite), `bool`, `None`;
- `list`, `tuple`, `set`, `frozenset` (tuples and sets are tagged, so `loads` gives back a
  tuple, a set or a frozenset: what traitlets and the profile model accept);
- dicts with string keys.

Anything else (an object, a callable, bytes, a non-string key, NaN) raises `ConfigDataError`
naming the key path, e.g. `FancyEnvSharing.profile_list[2].profile_options.image.choices.x`,
so the hub refuses to start with that message instead of handing the service a string.

Encoding: a tuple is `{"$tuple": [...]}`, a set `{"$set": [...]}`, a frozenset
`{"$frozenset": [...]}` (elements sorted by their JSON text, so the file is stable); a real
dict whose only key is one of these tags (or `$dict`) is wrapped as `{"$dict": {...}}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any

TAGS: dict[str, Callable[[Iterable[Any]], Any]] = {
    "$tuple": tuple,
    "$set": set,
    "$frozenset": frozenset,
}
DICT_TAG = "$dict"
ALLOWED = "str, int, float, bool, None, list, tuple, set, frozenset and dicts with string keys"


class ConfigDataError(ValueError):
    """A value the service config cannot carry; `path` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message} (the build service's config carries only {ALLOWED})")
        self.path = path
        self.message = message


def _kind(value: Any) -> str:
    if callable(value):
        name = getattr(value, "__qualname__", None) or type(value).__name__
        return f"a callable ({name})"
    return f"a {type(value).__module__}.{type(value).__qualname__} object"


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def to_data(value: Any, path: str) -> Any:
    """`value` as JSON-ready data (tagged tuples and sets), or ConfigDataError at `path`."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and type(value) is int:
        return value
    if isinstance(value, float) and type(value) is float:
        if not math.isfinite(value):
            raise ConfigDataError(path, f"{value!r} is not a finite number")
        return value
    if isinstance(value, list):
        return [to_data(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"$tuple": [to_data(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, set | frozenset):
        items = [to_data(v, f"{path}{{{v!r}}}") for v in value]
        tag = "$frozenset" if isinstance(value, frozenset) else "$set"
        return {tag: sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, dict):
        return _dict_to_data(value, path)
    if isinstance(value, bytes | bytearray):
        raise ConfigDataError(path, "bytes cannot be carried; give a str")
    raise ConfigDataError(path, f"{_kind(value)} cannot be carried")


def _dict_to_data(value: dict[Any, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ConfigDataError(f"{path}[{key!r}]", f"keys must be strings, not {_kind(key)}")
        out[str(key)] = to_data(item, _key_path(path, str(key)))
    if len(out) == 1 and next(iter(out)) in {*TAGS, DICT_TAG}:
        return {DICT_TAG: out}
    return out


def from_data(data: Any) -> Any:
    """The inverse of `to_data`: tagged objects become tuples, sets and frozensets again."""
    if isinstance(data, list):
        return [from_data(v) for v in data]
    if isinstance(data, dict):
        if len(data) == 1:
            (tag, inner), *_ = data.items()
            if tag in TAGS and isinstance(inner, list):
                return TAGS[tag](from_data(v) for v in inner)
            if tag == DICT_TAG and isinstance(inner, dict):
                return {k: from_data(v) for k, v in inner.items()}
        return {k: from_data(v) for k, v in data.items()}
    return data


def dumps(value: Any, path: str = "") -> str:
    """JSON text of `value` (see the module docstring); ConfigDataError names what cannot go."""
    return json.dumps(to_data(value, path), indent=1, allow_nan=False)


def loads(text: str) -> Any:
    """The value `dumps` wrote."""
    return from_data(json.loads(text))
