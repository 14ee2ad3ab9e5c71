"""Environment links (pure: no I/O).

An environment link names what a collaborator launches: a profile, its choices, and for a
repository-built environment the repository with either a pinned commit (default) or a branch
to follow. The link is reached through an unguessable code; only the code's SHA-256 digest is
stored, so a copy of the database yields no working link.

Everything here is deterministic given its inputs (the clock is a parameter), which keeps the
rules testable with parameter tables: code format and hashing, request parsing, expiry,
states, the per-user rate limit, and the choices offered when a server is already running.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import FancyError
from ..urlpaths import URLPathError, urlpath_from

#: Bytes of randomness in a link code: 24 bytes = 192 bits (at least 128 are required).
CODE_BYTES = 24
MIN_CODE_BYTES = 16
#: token_urlsafe alphabet; 22 characters carry 128 bits.
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,128}")
COMMIT_PATTERN = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
OPTION_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,63}(--unlisted-choice)?")
RESERVED_KEYS = frozenset({"profile", "build_id"})
MAX_OPTIONS = 32
MAX_VALUE_LENGTH = 1024
MAX_NOTE_LENGTH = 200

LinkState = Literal["active", "revoked", "expired"]


class LinkError(FancyError, ValueError):
    """A request the link rules refuse; `field` names the input, `status` the HTTP status."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(status, message, field)


# ---------------------------------------------------------------------------- codes


def new_code(nbytes: int = CODE_BYTES) -> str:
    """A fresh, URL-safe, unguessable link code of `nbytes` random bytes (>= 16)."""
    if nbytes < MIN_CODE_BYTES:
        raise ValueError(f"link codes need at least {MIN_CODE_BYTES} bytes, got {nbytes}")
    return secrets.token_urlsafe(nbytes)


def hash_code(code: str) -> str:
    """The stored form of a code: SHA-256 hex digest.

    A plain (unsalted, fast) hash is right here: codes carry >= 128 random bits, so there is
    nothing to brute-force, and a deterministic digest lets the store look a code up by index.
    """
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def is_well_formed_code(code: str) -> bool:
    """Cheap shape check before any database lookup."""
    return bool(CODE_PATTERN.fullmatch(code))


#: a link code in a path (`…/l/<code>`), for log redaction
_CODE_IN_PATH = re.compile(r"(/l/)[A-Za-z0-9_-]+")
REDACTED = "[code]"


def redact_codes(text: str) -> str:
    """`text` with every link code in a `/l/<code>` path replaced: codes never reach a log."""
    return _CODE_IN_PATH.sub(lambda m: m.group(1) + REDACTED, text)


def new_link_id() -> str:
    """A public, non-secret identifier for API operations (list, revoke, expiry)."""
    return secrets.token_hex(8)


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True)
class LinkPolicy:
    """The admin's rules for links (filled from the service's traits)."""

    default_expires_in: int | None = 30 * 86400
    max_expires_in: int | None = 365 * 86400
    allow_autostart: bool = False
    rate_limit: int = 20
    rate_window: int = 3600


@dataclass(frozen=True)
class LinkSpec:
    """What a link launches."""

    profile: str
    options: Mapping[str, str] = field(default_factory=dict)
    repo: str = ""
    ref: str = ""
    commit: str = ""
    follow_branch: bool = False
    build_id: str = ""
    autostart: bool = False
    note: str = ""
    subdir: str = ""  # the repository's subdirectory repo2docker builds from
    urlpath: str = ""  # what the launch opens (normalised; see fancy_env.urlpaths)

    @property
    def is_repository(self) -> bool:
        return bool(self.repo)

    @property
    def build_ref(self) -> str:
        """The ref to ask the build service for: the pinned commit, or the followed branch."""
        if not self.repo:
            return ""
        return self.ref if self.follow_branch else self.commit


@dataclass(frozen=True)
class Link:
    id: str
    code_hash: str
    owner: str
    spec: LinkSpec
    created: float
    expires_at: float | None = None
    revoked_at: float | None = None
    launches: int = 0  # servers started through it (read with the link, never per row)


def link_state(link: Link, now: float) -> LinkState:
    """Revoked wins over expired: a revoked link is gone (404), an expired one says so (410)."""
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and now >= link.expires_at:
        return "expired"
    return "active"


STATE_STATUS: dict[LinkState, int] = {"active": 200, "revoked": 404, "expired": 410}


def user_options(spec: LinkSpec, build_id: str = "") -> dict[str, str]:
    """The `user_options` a launch carries: `{profile, <options>, build_id, urlpath}`."""
    options: dict[str, str] = {"profile": spec.profile, **dict(spec.options)}
    if build_id:
        options["build_id"] = build_id
    if spec.urlpath:
        options["urlpath"] = spec.urlpath
    return options


# ---------------------------------------------------------------------------- parsing


def _string(body: Mapping[str, Any], key: str, *, required: bool = False, limit: int = 512) -> str:
    value = body.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise LinkError(key, "must be a string")
    value = value.strip()
    if required and not value:
        raise LinkError(key, "is required")
    if len(value) > limit:
        raise LinkError(key, f"must be at most {limit} characters")
    if any(ord(ch) < 32 for ch in value):
        raise LinkError(key, "must not contain control characters")
    return value


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise LinkError(key, "must be true or false")
    return value


def parse_options(raw: Any) -> dict[str, str]:
    """Choices as KubeSpawner's `user_options` keys: `<option>`, `<option>--unlisted-choice`."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise LinkError("options", "must be an object of option name to choice")
    if len(raw) > MAX_OPTIONS:
        raise LinkError("options", f"at most {MAX_OPTIONS} options")
    options: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not OPTION_KEY_PATTERN.fullmatch(key):
            raise LinkError(f"options.{key}", "is not a valid option name")
        if key in RESERVED_KEYS:
            raise LinkError(f"options.{key}", "is set by the link itself, not an option")
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise LinkError(f"options.{key}", f"must be a string of <= {MAX_VALUE_LENGTH} chars")
        if any(ord(ch) < 32 for ch in value):
            raise LinkError(f"options.{key}", "must not contain control characters")
        options[key] = value
    return options


def parse_expiry(raw: Any, now: float, policy: LinkPolicy) -> float | None:
    """`expires_in` seconds (or null for "never" when the admin allows it) -> absolute time."""
    if raw is None:
        if policy.default_expires_in is None:
            return None
        return now + policy.default_expires_in
    if raw == 0 or raw == "never":
        if policy.max_expires_in is not None:
            raise LinkError(
                "expires_in", f"links must expire; at most {policy.max_expires_in} seconds"
            )
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise LinkError("expires_in", "must be a whole number of seconds")
    if raw < 60:
        raise LinkError("expires_in", "must be at least 60 seconds")
    if policy.max_expires_in is not None and raw > policy.max_expires_in:
        raise LinkError("expires_in", f"must be at most {policy.max_expires_in} seconds")
    return now + raw


def parse_link_request(body: Any, policy: LinkPolicy) -> LinkSpec:
    """Validate the shape of a `POST api/links` body into a LinkSpec.

    Shape only: whether the profile and choices exist and whether the owner may use them is
    the validator's business (checked by the handler), and whether a build exists the build
    service's.
    """
    if not isinstance(body, Mapping):
        raise LinkError("", "the request body must be a JSON object")
    profile = _string(body, "profile", required=True, limit=63)
    repo = _string(body, "repo", limit=1024)
    ref = _string(body, "ref", limit=255)
    commit = _string(body, "commit", limit=64).lower()
    build_id = _string(body, "build_id", limit=128)
    subdir = _string(body, "subdir", limit=1024)
    follow = _flag(body, "follow_branch")
    autostart = _flag(body, "autostart")
    if autostart and not policy.allow_autostart:
        raise LinkError("autostart", "one-click launch is turned off on this hub", status=403)
    if repo:
        if follow and not ref:
            raise LinkError("ref", "a link that follows a branch needs the branch name")
        if not follow and not COMMIT_PATTERN.fullmatch(commit):
            raise LinkError("commit", "a pinned link needs the full resolved commit (40 hex)")
    elif commit or ref or follow or build_id or subdir:
        raise LinkError("repo", "commit, ref, subdir, follow_branch and build_id need a repository")
    try:
        urlpath = urlpath_from(body)  # `urlpath`, or Binder's `labpath` (= lab/tree/<labpath>)
    except URLPathError as err:
        raise LinkError(err.field, err.message) from None
    return LinkSpec(
        profile=profile,
        options=parse_options(body.get("options")),
        repo=repo,
        ref=ref,
        commit="" if follow else commit,
        follow_branch=follow,
        build_id=build_id,
        autostart=autostart,
        note=_string(body, "note", limit=MAX_NOTE_LENGTH),
        subdir=subdir,
        urlpath=urlpath,
    )


def parse_link_update(body: Any, now: float, policy: LinkPolicy) -> dict[str, Any]:
    """A `PATCH api/links/<id>` body: `{"expires_in": s}` and/or `{"revoked": true}`."""
    if not isinstance(body, Mapping) or not body:
        raise LinkError("", "send expires_in and/or revoked")
    unknown = sorted(set(body) - {"expires_in", "revoked"})
    if unknown:
        raise LinkError(unknown[0], "unknown field; allowed: expires_in, revoked")
    changes: dict[str, Any] = {}
    if "expires_in" in body:
        changes["expires_at"] = parse_expiry(body["expires_in"], now, policy)
    if "revoked" in body:
        if body["revoked"] is not True:
            raise LinkError("revoked", "can only be set to true (a revoked link stays revoked)")
        changes["revoked_at"] = now
    return changes


# ---------------------------------------------------------------------------- rate limit


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int = 0


def check_rate(recent: Sequence[float], now: float, limit: int, window: float) -> RateDecision:
    """Sliding-window limit: at most `limit` creations in any `window` seconds.

    `recent` are the creation times of this user's links (any order; old ones are ignored).
    `limit <= 0` turns creation off entirely.
    """
    if limit <= 0:
        return RateDecision(False, int(window))
    inside = sorted(t for t in recent if now - window < t <= now)
    if len(inside) < limit:
        return RateDecision(True)
    oldest_that_counts = inside[len(inside) - limit]
    retry = oldest_that_counts + window - now
    return RateDecision(False, max(1, int(retry + 0.999)))


# ---------------------------------------------------------------------------- running server


Action = Literal["launch", "open", "replace", "named"]


@dataclass(frozen=True)
class ServerSituation:
    """What the recipient already has (from the hub's user model)."""

    default_running: bool = False
    default_pending: str | None = None
    named_allowed: bool = False
    named_count: int = 0
    named_limit: int = 0  # 0 = no limit


def offered_actions(situation: ServerSituation) -> list[Action]:
    """Which buttons the link page shows. Never empty: there is always a way forward."""
    if situation.default_pending == "stop":
        stopping: list[Action] = ["replace"]
        return stopping + (["named"] if _may_add_named(situation) else [])
    if not situation.default_running and not situation.default_pending:
        return ["launch"]
    actions: list[Action] = ["open", "replace"]
    if _may_add_named(situation):
        actions.append("named")
    return actions


def _may_add_named(s: ServerSituation) -> bool:
    return s.named_allowed and (s.named_limit == 0 or s.named_count < s.named_limit)


NAMED_SERVER_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def named_server_name(link_id: str, taken: Sequence[str]) -> str:
    """A fresh name for "launch as a new named server": `shared-<id>`, then `-2`, `-3`..."""
    base = f"shared-{link_id[:8].lower()}"
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def situation_from_user_model(
    model: Mapping[str, Any], named_allowed: bool, named_limit: int = 0
) -> ServerSituation:
    """Read the hub's user model (`servers` needs the `read:servers` scope)."""
    servers = model.get("servers") or {}
    default = servers.get("") or {}
    named = [name for name in servers if name]
    return ServerSituation(
        default_running=bool(default.get("ready")),
        default_pending=default.get("pending") or None,
        named_allowed=named_allowed,
        named_count=len(named),
        named_limit=named_limit,
    )
