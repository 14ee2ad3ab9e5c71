"""What a launch opens: Binder's `urlpath` and `labpath`, checked and normalised (pure: no I/O).

* `urlpath` is a path relative to the single-user server's root, as mybinder.org spells it:
  `lab/tree/notebooks/intro.ipynb`, `tree/x.ipynb`, `doc/tree/x.ipynb`, `voila/render/x.ipynb`.
* `labpath` is a file path relative to the server's notebook directory; it means
  `lab/tree/<labpath>` (JupyterLab on that file), as on mybinder.org.

The result is applied to one start only, as the spawner's `default_url` (`/<urlpath>`), which
the single-user server redirects its root to. Rules (every refusal names the field):

* relative only: no leading `/` or `\\`, no scheme (`https:`, `javascript:`), no `//host`;
* no `.` or `..` segment, also when percent-encoded (`%2e%2e`, `.%2E`), no encoded `/`
  (`%2f`) or `\\` anywhere, no double encoding (`%252e`), no empty segment (`a//b`);
* no NUL, control or line-separator characters, raw or percent-encoded;
* at most `MAX_URLPATH_LENGTH` characters as given, and as normalised;
* a query is allowed in `urlpath` only (`lab/tree/x.ipynb?reset`); its characters are limited
  to URL query characters and its escapes may not decode to control characters; a fragment
  (`#…`) is refused (the browser never sends it to the server); `labpath` is a file path, so
  `?` and `#` in it are refused (percent-encode them when they are part of a file name).

Normalised form: each path segment percent-decoded once and re-encoded (spaces and non-ASCII
become `%XX`, so `{` and `}` never reach JupyterHub's `str.format` of `default_url`); the query
is kept as given (its allowed characters exclude `{`, `}`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from .errors import FancyError

#: longest urlpath/labpath accepted, as given and once normalised
MAX_URLPATH_LENGTH = 1024
#: the user_options / link / form key that carries the normalised path
URLPATH = "urlpath"
LABPATH = "labpath"

#: characters a path segment may keep unencoded (RFC 3986 pchar minus '%', which is re-made)
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
#: a query: RFC 3986 query characters and well-formed escapes
_QUERY = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


class URLPathError(FancyError, ValueError):
    """A refused path; `field` is `urlpath` or `labpath`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(400, message, field)


def _forbidden_char(text: str) -> str | None:
    for ch in text:
        if unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029":
            return f"U+{ord(ch):04X}"
    return None


def _check_raw(field: str, value: str) -> None:
    if len(value) > MAX_URLPATH_LENGTH:
        raise URLPathError(field, f"must be at most {MAX_URLPATH_LENGTH} characters.")
    bad = _forbidden_char(value)
    if bad:
        raise URLPathError(field, f"must not contain control characters (found {bad}).")
    if "\\" in value:
        raise URLPathError(field, "must not contain backslashes; separate folders with '/'.")
    if value.startswith("/"):
        raise URLPathError(
            field,
            "must be relative to the server's root, without a leading '/' "
            "(e.g. lab/tree/notebooks/intro.ipynb).",
        )
    if _SCHEME.match(value):
        raise URLPathError(field, "must be a path on your server, not a URL with a scheme.")
    if _BAD_ESCAPE.search(value):
        raise URLPathError(field, "has a '%' that is not a %XX escape; write '%25' for '%'.")


def _segment(field: str, raw: str) -> str:
    """One path segment, decoded once, checked, re-encoded."""
    decoded = unquote(raw, errors="strict") if "%" in raw else raw
    if decoded in (".", ".."):
        raise URLPathError(field, "must not contain '.' or '..' segments (no traversal).")
    if "/" in decoded or "\\" in decoded:
        raise URLPathError(field, "must not contain an encoded '/' or '\\' (%2F, %5C).")
    if _ESCAPE.search(decoded):
        raise URLPathError(field, "must not be percent-encoded twice (e.g. %252e).")
    bad = _forbidden_char(decoded)
    if bad:
        raise URLPathError(field, f"must not contain control characters (found {bad}).")
    return quote(decoded, safe=_SEGMENT_SAFE)


def _path(field: str, path: str) -> str:
    if not path:
        raise URLPathError(field, "names no path.")
    segments = path.split("/")
    trailing = segments[-1] == ""
    if trailing:
        segments.pop()
    if any(s == "" for s in segments):
        raise URLPathError(field, "must not contain empty segments ('//').")
    try:
        cleaned = [_segment(field, s) for s in segments]
    except UnicodeDecodeError:
        raise URLPathError(field, "has %XX escapes that are not UTF-8.") from None
    return "/".join(cleaned) + ("/" if trailing else "")


def _query(field: str, query: str) -> str:
    if not _QUERY.fullmatch(query):
        raise URLPathError(field, "has characters a URL query may not hold; percent-encode them.")
    bad = _forbidden_char(unquote(query))
    if bad:
        raise URLPathError(field, f"must not contain control characters (found {bad}).")
    return query


def normalise_urlpath(value: str, field: str = URLPATH) -> str:
    """`value` as a checked, normalised path relative to the server's root (no leading '/')."""
    value = value.strip()
    _check_raw(field, value)
    if "#" in value:
        raise URLPathError(field, "must not contain a '#' fragment (the server never sees it).")
    path, sep, query = value.partition("?")
    normal = _path(field, path) + (sep + _query(field, query) if sep else "")
    if len(normal) > MAX_URLPATH_LENGTH:
        raise URLPathError(field, f"must be at most {MAX_URLPATH_LENGTH} characters encoded.")
    return normal


def normalise_labpath(value: str) -> str:
    """A `labpath` (a file path relative to the notebook directory) as an urlpath."""
    value = value.strip()
    _check_raw(LABPATH, value)
    if "?" in value or "#" in value:
        raise URLPathError(LABPATH, "is a file path: no '?' or '#' (use urlpath for a query).")
    normal = "lab/tree/" + _path(LABPATH, value)
    if len(normal) > MAX_URLPATH_LENGTH:
        raise URLPathError(LABPATH, f"must be at most {MAX_URLPATH_LENGTH} characters encoded.")
    return normal


def urlpath_from(values: Mapping[str, Any]) -> str:
    """The normalised urlpath that `values` (a request body, query or user_options) asks for:
    from `urlpath` or `labpath` (not both); "" when neither is given."""
    given = {}
    for key in (URLPATH, LABPATH):
        raw = values.get(key)
        if raw is None or raw == "":
            continue
        if not isinstance(raw, str):
            raise URLPathError(key, f"must be a string, not {type(raw).__name__}.")
        if raw.strip():
            given[key] = raw
    if len(given) == 2:
        raise URLPathError(LABPATH, "give urlpath or labpath, not both.")
    if URLPATH in given:
        return normalise_urlpath(given[URLPATH])
    if LABPATH in given:
        return normalise_labpath(given[LABPATH])
    return ""


def default_url(urlpath: str) -> str:
    """The spawner's `default_url` for a normalised urlpath (server-relative, leading '/')."""
    return "/" + urlpath
