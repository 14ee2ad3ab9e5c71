"""Form tickets: short-lived, user-scoped HMAC tokens for the build service (pure).

The spawner mints a ticket when it renders the form, and only for a user who holds the build
scope; the form sends it in the `X-Fancy-Env-Ticket` header; the service verifies it with the
same secret. A ticket is `base64url(payload).base64url(hmac_sha256(secret, payload))` with the
payload `{"aud": "fancy-env", "sub": username, "exp": unix_time, "scp": [scopes],
"grp": [groups]}`: the scopes say what the holder may do (a ticket without the build scope is
refused), the groups are the user's hub groups when it was minted, so a link created with a
ticket is checked against the same profile rights as one created with the user's API token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

AUDIENCE = "fancy-env"
HEADER = "X-Fancy-Env-Ticket"
#: the JupyterHub scope a ticket must carry (see fancy_env.hubconfig)
BUILD_SCOPE = "custom:fancy-env:build"
MAX_TICKET_LENGTH = 8192
MAX_GROUPS = 200


class TicketError(Exception):
    """A ticket that is malformed, forged, expired, for another audience or without scope."""


@dataclass(frozen=True)
class Claims:
    """What a valid ticket says about its holder."""

    user: str
    scopes: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a configured secret string: hex if it is hex, else its UTF-8 bytes."""
    try:
        return bytes.fromhex(secret)
    except ValueError:
        return secret.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def mint(
    secret: bytes,
    username: str,
    ttl: int,
    now: float | None = None,
    *,
    scopes: Iterable[str] = (BUILD_SCOPE,),
    groups: Iterable[str] = (),
) -> str:
    """A ticket for `username`, valid for `ttl` seconds, carrying `scopes` and `groups`.

    The caller decides the scopes: mint only what the user holds (the spawner checks the
    user's hub scopes first, see `fancy_env.spawner_base`)."""
    if not secret:
        raise ValueError("ticket secret must not be empty")
    if ttl <= 0:
        raise ValueError("ticket ttl must be positive")
    group_list = sorted(set(groups))
    if len(group_list) > MAX_GROUPS:
        raise ValueError(f"a ticket carries at most {MAX_GROUPS} groups")
    now = time.time() if now is None else now
    claims = {
        "aud": AUDIENCE,
        "sub": username,
        "exp": int(now + ttl),
        "scp": sorted(set(scopes)),
        "grp": group_list,
    }
    body = json.dumps(claims, separators=(",", ":"))
    payload = _b64(body.encode("utf-8"))
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: bytes, ticket: str, now: float | None = None) -> str:
    """Return the username of a valid ticket that carries the build scope, or raise."""
    claims = verify_claims(secret, ticket, now)
    if BUILD_SCOPE not in claims.scopes:
        raise TicketError(f"ticket does not carry the scope {BUILD_SCOPE}")
    return claims.user


def _strings(claims: dict[str, object], key: str) -> tuple[str, ...]:
    value = claims.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TicketError(f"malformed ticket ({key})")
    return tuple(value)


def verify_claims(secret: bytes, ticket: str, now: float | None = None) -> Claims:
    """Return the claims of a ticket with a good signature, audience and expiry, or raise."""
    if not secret:
        raise TicketError("tickets are not enabled (no secret configured)")
    if not ticket or len(ticket) > MAX_TICKET_LENGTH or ticket.count(".") != 1:
        raise TicketError("malformed ticket")
    payload, signature = ticket.split(".")
    try:
        expected = _sign(secret, payload)
    except UnicodeEncodeError:
        raise TicketError("malformed ticket") from None
    if not hmac.compare_digest(expected, signature):
        raise TicketError("bad ticket signature")
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        raise TicketError("malformed ticket") from None
    if not isinstance(claims, dict) or claims.get("aud") != AUDIENCE:
        raise TicketError("ticket is for another audience")
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now:
        raise TicketError("ticket expired")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TicketError("ticket has no user")
    return Claims(sub, frozenset(_strings(claims, "scp")), _strings(claims, "grp"))
