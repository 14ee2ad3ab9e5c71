"""Request input shared by the build service and sharing: JSON bodies and integer parameters.

Pure (no I/O): `parse_json_body(raw, max_bytes, max_depth)` refuses a body that is too big
(413), too deeply nested or not JSON (400) *before* `json.loads` can recurse, and
`int_param(raw, field, low, high, default)` refuses anything but an integer in range (400).
Each refusal is an `InputError` naming the field (`body`, `limit`, `offset`…) and what is
allowed; the handlers turn it into their own 4xx answer.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from .errors import FancyError

DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_JSON_DEPTH = 32

# JSON strings (with their escapes), so that brackets inside strings are not counted
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class InputError(FancyError):
    """Refused request input: `status` (400 or 413), the `field` at fault, a message."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(status, message, field)


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in `raw` (0 for a scalar)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    if not brackets:
        return 0
    return max(0, max(accumulate(_STEP[b] for b in brackets)))


def parse_json_body(
    raw: bytes | None,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
    empty: Any = None,
) -> Any:
    """The JSON value of a request body; `empty` (default `{}`) when there is no body.

    `max_bytes` or `max_depth` of 0 turns that check off."""
    raw = raw or b""
    if 0 < max_bytes < len(raw):
        raise InputError(
            413, "body", f"the request body is {len(raw)} bytes; at most {max_bytes} are accepted"
        )
    if not raw.strip():
        return {} if empty is None else empty
    depth = json_depth(raw) if max_depth > 0 else 0
    if depth > max_depth > 0:
        raise InputError(
            400, "body", f"JSON nested {depth} levels deep; at most {max_depth} are accepted"
        )
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InputError(400, "body", "the request body must be JSON") from None


def int_param(raw: str | None, field: str, low: int, high: int, default: int) -> int:
    """An integer query parameter in `[low, high]`; `default` when absent or empty."""
    if raw is None or raw == "":
        return default
    allowed = f"must be an integer from {low} to {high}"
    text = raw.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise InputError(400, field, allowed)
    value = int(text)
    if not low <= value <= high:
        raise InputError(400, field, f"{allowed}, not {value}")
    return value
