"""Binder launch URLs: `v2/<provider>/<spec>?urlpath=…|labpath=…` (pure: no I/O).

The URL shape of mybinder.org's badges, parsed as BinderHub parses it (its `repoproviders`
module and the base handler that re-reads the spec from the raw request path, so that an
escaped `%2F` stays inside one part):

* `gh/<owner>/<repo>/<ref>`: split on the first two `/`, so the ref may hold `/`; the ref is
  percent-decoded, a `.git` suffix of the repository is dropped; a missing ref is refused
  (BinderHub suggests `…/HEAD`).
* `gl/<url-encoded project path>/<ref>`: split on the first `/`; both parts percent-decoded
  (`group%2Fsub%2Fproject/main`); a ref is required.
* `git/<url-encoded repository URL>/<ref>`: split on the first `/`; both parts
  percent-decoded; a ref is required.

`HEAD` means the remote's default branch (the build service's empty ref). Which forge `gh` and
`gl` name is the caller's (`FancyEnvBinder.github_url`, `gitlab_url`); the resulting URL then
goes through the build service's repository policy like any typed URL. The path to open comes
from the query (`urlpath`, or `labpath` = `lab/tree/<labpath>`), checked by
`fancy_env.urlpaths`.

`hub_redirect_target` is the hub side: `<base_url>hub/v2/…` (where the hub's prefix redirect
sends `<base_url>v2/…`) goes to the service's own `v2/…` page, and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import FancyError
from .repos import RepoError, check_ref
from .urlpaths import URLPathError, urlpath_from

PROVIDERS = ("gh", "gl", "git")
MAX_SPEC_LENGTH = 2048
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PROJECT = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")


class BinderError(FancyError, ValueError):
    """A refused Binder URL: `field` is `provider`, `spec`, `ref`, `repo`, `urlpath` or
    `labpath`; `status` the HTTP status of the page that says so."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(status, message, field)


@dataclass(frozen=True)
class BinderRequest:
    """What a Binder URL asks for: a repository URL (before the build service's policy), a
    ref ("" = the remote's HEAD) and the normalised path to open ("" = the default)."""

    provider: str
    repo: str
    ref: str
    urlpath: str = ""

    @property
    def ref_shown(self) -> str:
        return self.ref or "HEAD"


def _decode(field: str, raw: str) -> str:
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BinderError(field, "has %XX escapes that are not UTF-8") from None
    if _CONTROL.search(text):
        raise BinderError(field, "must not contain spaces or control characters")
    return text


def _ref(raw: str, example: str) -> str:
    ref = _decode("ref", raw)
    if not ref:
        raise BinderError("ref", f"is required: {example}")
    try:
        check_ref(ref)
    except RepoError as err:
        raise BinderError("ref", err.reason) from None
    return "" if ref == "HEAD" else ref


def _strip_git(name: str) -> str:
    return name[: -len(".git")] if name.endswith(".git") else name


def _github(spec: str, base: str) -> tuple[str, str]:
    parts = spec.split("/", 2)
    example = "the form is gh/<owner>/<repo>/<ref>"
    if len(parts) != 3:
        hint = f'; did you mean "{spec}/HEAD"?' if len(parts) == 2 and all(parts) else ""
        raise BinderError("spec", f"{example}, not {spec!r}{hint}")
    owner, repo = parts[0], _strip_git(parts[1])
    for field, value in (("owner", owner), ("repo", repo)):
        if not _NAME.fullmatch(value) or value in (".", ".."):
            raise BinderError("spec", f"{example}; the {field} is letters, digits, '.', '_', '-'")
    return f"{base}/{owner}/{repo}", _ref(parts[2], example)


def _gitlab(spec: str, base: str) -> tuple[str, str]:
    example = "the form is gl/<url-encoded project path>/<ref>, e.g. gl/group%2Fproject/main"
    quoted, sep, raw_ref = spec.partition("/")
    if not sep:
        raise BinderError("spec", f"{example}, not {spec!r}")
    project = _strip_git(_decode("spec", quoted).strip("/"))
    segments = project.split("/")
    if not _PROJECT.fullmatch(project) or any(s in (".", "..") for s in segments):
        raise BinderError(
            "spec", f"{example}; the project path is at least group/project, in letters, "
            "digits, '.', '_', '-'"
        )  # fmt: skip
    return f"{base}/{project}", _ref(raw_ref, example)


def _git(spec: str) -> tuple[str, str]:
    example = "the form is git/<url-encoded repository URL>/<ref>"
    quoted, sep, raw_ref = spec.partition("/")
    if not sep or not quoted:
        raise BinderError("spec", f"{example}, not {spec!r}")
    return _decode("repo", quoted), _ref(raw_ref, example)


def parse_binder(
    provider: str,
    spec: str,
    query: Mapping[str, Any] | None = None,
    *,
    github_url: str = "https://github.com",
    gitlab_url: str = "https://gitlab.com",
) -> BinderRequest:
    """Parse `provider` and the raw (still percent-encoded) `spec` of `v2/<provider>/<spec>`
    and the query's `urlpath`/`labpath`; raise BinderError naming the field."""
    if provider not in PROVIDERS:
        shown = provider if provider.isprintable() and len(provider) <= 40 else "that"
        raise BinderError(
            "provider", f"{shown!r} is not a provider here; allowed: {', '.join(PROVIDERS)}", 404
        )
    if len(spec) > MAX_SPEC_LENGTH:
        raise BinderError("spec", f"must be at most {MAX_SPEC_LENGTH} characters")
    if not spec:
        raise BinderError("spec", "is missing after the provider")
    if provider == "gh":
        repo, ref = _github(spec, github_url.rstrip("/"))
    elif provider == "gl":
        repo, ref = _gitlab(spec, gitlab_url.rstrip("/"))
    else:
        repo, ref = _git(spec)
    try:
        urlpath = urlpath_from(query or {})
    except URLPathError as err:
        raise BinderError(err.field, err.message) from None
    return BinderRequest(provider=provider, repo=repo, ref=ref, urlpath=urlpath)


def split_v2_path(path: str, prefix: str) -> tuple[str, str]:
    """(provider, raw spec) of a raw request path `<prefix>v2/<provider>/<spec>` (the path
    as sent, not tornado's decoded arguments: `%2F` must stay inside the spec)."""
    head = prefix.rstrip("/") + "/v2/"
    if not path.startswith(head):
        raise BinderError("spec", "the path is not a Binder URL (…/v2/<provider>/<spec>)", 404)
    provider, _, spec = path[len(head) :].partition("/")
    return provider, spec


def query_values(arguments: Mapping[str, list[bytes]]) -> dict[str, str]:
    """The last value of each query argument (what BinderHub's `get_argument` reads)."""
    return {k: v[-1].decode("utf-8", "replace") for k, v in arguments.items() if v}


def hub_redirect_target(service_prefix: str, rest: str, query: str) -> str:
    """Where the hub sends `<base_url>hub/v2/<rest>?<query>`: the service's own
    `<service_prefix>v2/<rest>?<query>`. `rest` and `query` are raw (as sent); anything that
    could leave the service's prefix once a browser resolves it (`.`/`..` segments, also
    percent-encoded, backslashes, an empty first segment) or split the header is refused."""
    if not service_prefix.startswith("/") or service_prefix.startswith("//"):
        raise BinderError("prefix", "the service prefix must be an absolute path", 500)
    for field, text in (("spec", rest), ("query", query)):
        if _CONTROL.search(text):
            raise BinderError(field, "must not contain spaces or control characters")
        if "\\" in text:
            raise BinderError(field, "must not contain backslashes")
    if not rest or rest.startswith("/"):
        raise BinderError("spec", "the form is v2/<provider>/<spec>")
    for segment in rest.split("/"):
        if unquote(segment).strip() in (".", ".."):
            raise BinderError("spec", "must not contain '.' or '..' segments")
    target = f"{service_prefix.rstrip('/')}/v2/{rest}"
    return target + (f"?{query}" if query else "")
