"""Form tickets: HMAC-SHA256, audience fancy-env, expiry, tamper-proof."""

from __future__ import annotations

import base64
import json

import pytest

from fancy_env.tickets import (
    BUILD_SCOPE,
    Claims,
    TicketError,
    mint,
    secret_bytes,
    verify,
    verify_claims,
)

SECRET = b"k" * 32
NOW = 1_700_000_000.0


def test_round_trip() -> None:
    ticket = mint(SECRET, "alice", 60, now=NOW)
    assert verify(SECRET, ticket, now=NOW + 59) == "alice"


def _forge(claims: dict[str, object]) -> str:
    import hashlib
    import hmac

    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sig = hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("ticket", "secret", "now", "reason"),
    [
        (mint(SECRET, "alice", 60, now=NOW), SECRET, NOW + 60, "expired"),
        (mint(SECRET, "alice", 60, now=NOW), b"other", NOW, "signature"),
        (mint(SECRET, "alice", 60, now=NOW), b"", NOW, "not enabled"),
        ("", SECRET, NOW, "malformed"),
        ("abc", SECRET, NOW, "malformed"),
        ("a.b.c", SECRET, NOW, "malformed"),
        ("é.x", SECRET, NOW, "malformed"),
        ("x" * 9000 + ".y", SECRET, NOW, "malformed"),
        (_forge({"aud": "other", "sub": "alice", "exp": NOW + 60}), SECRET, NOW, "audience"),
        (_forge({"aud": "fancy-env", "sub": "", "exp": int(NOW + 60)}), SECRET, NOW, "no user"),
        (_forge({"aud": "fancy-env", "sub": "a", "exp": "soon"}), SECRET, NOW, "expired"),
        (_forge(["not", "a", "dict"]), SECRET, NOW, "audience"),  # type: ignore[arg-type]
    ],
)
def test_refused(ticket: str, secret: bytes, now: float, reason: str) -> None:
    with pytest.raises(TicketError, match=reason):
        verify(secret, ticket, now=now)


def test_tampered_user_is_refused() -> None:
    ticket = mint(SECRET, "alice", 60, now=NOW)
    payload, sig = ticket.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TicketError, match="signature"):
        verify(SECRET, f"{forged}.{sig}", now=NOW)


@pytest.mark.parametrize(("kwargs", "reason"), [({"ttl": 0}, "ttl"), ({"secret": b""}, "secret")])
def test_mint_refuses(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"secret": SECRET, "username": "a", "ttl": 5, **kwargs}
    with pytest.raises(ValueError, match=reason):
        mint(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "key"), [("6162", b"ab"), ("not-hex", b"not-hex")])
def test_secret_bytes(text: str, key: bytes) -> None:
    assert secret_bytes(text) == key


def test_claims_carry_scopes_and_groups() -> None:
    ticket = mint(SECRET, "alice", 60, now=NOW, groups=["b", "a", "a"])
    claims = verify_claims(SECRET, ticket, now=NOW)
    assert claims == Claims("alice", frozenset({BUILD_SCOPE}), ("a", "b"))


def test_a_ticket_without_the_build_scope_is_refused() -> None:
    """Only the spawner decides the scopes; a ticket without the build scope cannot build."""
    ticket = mint(SECRET, "alice", 60, now=NOW, scopes=())
    assert verify_claims(SECRET, ticket, now=NOW).scopes == frozenset()
    with pytest.raises(TicketError, match="scope"):
        verify(SECRET, ticket, now=NOW)


@pytest.mark.parametrize("bad", [{"scp": "x"}, {"grp": [1]}, {"scp": None}])
def test_malformed_claims(bad: dict[str, object]) -> None:
    claims = {"aud": "fancy-env", "sub": "a", "exp": int(NOW + 60), **bad}
    with pytest.raises(TicketError, match="malformed"):
        verify_claims(SECRET, _forge(claims), now=NOW)


def test_too_many_groups() -> None:
    with pytest.raises(ValueError, match="groups"):
        mint(SECRET, "alice", 60, groups=[f"g{i}" for i in range(300)])
