"""Form tickets: short-lived, user-scoped HMAC tokens for the build service (pure).

The spawner mints a ticket when it renders the form; the form sends it in the
`X-Fancy-Env-Ticket` header; the service verifies it with the same secret. A ticket is
`base64url(payload).base64url(hmac_sha256(secret, payload))` with the payload
`{"aud": "fancy-env", "sub": username, "exp": unix_time}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

AUDIENCE = "fancy-env"
HEADER = "X-Fancy-Env-Ticket"
MAX_TICKET_LENGTH = 1024


class TicketError(Exception):
    """A ticket that is malformed, forged, expired or for another audience."""


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


def mint(secret: bytes, username: str, ttl: int, now: float | None = None) -> str:
    """A ticket for `username`, valid for `ttl` seconds."""
    if not secret:
        raise ValueError("ticket secret must not be empty")
    if ttl <= 0:
        raise ValueError("ticket ttl must be positive")
    now = time.time() if now is None else now
    body = json.dumps(
        {"aud": AUDIENCE, "sub": username, "exp": int(now + ttl)}, separators=(",", ":")
    )
    payload = _b64(body.encode("utf-8"))
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: bytes, ticket: str, now: float | None = None) -> str:
    """Return the ticket's username, or raise TicketError."""
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
    return sub
