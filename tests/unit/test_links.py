"""Pure rules of environment links: codes, hashing, parsing, expiry, rate limit, choices."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest

from fancy_env.sharing import links as L

NOW = 1_800_000_000.0
SHA = "a" * 40
POLICY = L.LinkPolicy()


# ---------------------------------------------------------------------------- codes


@pytest.mark.parametrize("nbytes", [16, 24, 32, 64])
def test_code_carries_at_least_128_bits(nbytes: int) -> None:
    code = L.new_code(nbytes)
    assert L.is_well_formed_code(code)
    # token_urlsafe: 6 bits per character
    assert len(code) * 6 >= nbytes * 8 >= 128


@pytest.mark.parametrize("nbytes", [0, 8, 15])
def test_code_refuses_weak_lengths(nbytes: int) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        L.new_code(nbytes)


def test_codes_are_unique() -> None:
    codes = {L.new_code() for _ in range(2000)}
    assert len(codes) == 2000


def test_default_code_is_192_bits() -> None:
    assert L.CODE_BYTES * 8 == 192
    assert len(L.new_code()) == math.ceil(24 * 8 / 6)


@pytest.mark.parametrize(
    "code",
    [
        "abc",
        "",
        "a" * 21,
        "has space" + "a" * 20,
        "a/" + "b" * 30,
        "é" * 30,
        "a" * 129,
        "../../etc/passwd" + "a" * 10,
    ],
)
def test_malformed_codes(code: str) -> None:
    assert not L.is_well_formed_code(code)


@pytest.mark.parametrize("code", ["a" * 22, "A-_0" * 8, L.new_code(), L.new_code(64)])
def test_well_formed_codes(code: str) -> None:
    assert L.is_well_formed_code(code)


@pytest.mark.parametrize(
    "code",
    ["x" * 32, "abcdefghijklmnopqrstuvwxyz012345", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
)
def test_hash_is_sha256_hex_and_not_the_code(code: str) -> None:
    digest = L.hash_code(code)
    assert digest == hashlib.sha256(code.encode()).hexdigest()
    assert len(digest) == 64 and code not in digest
    assert L.hash_code(code) == digest  # deterministic: index lookup works


def test_different_codes_different_hashes() -> None:
    a, b = L.new_code(), L.new_code()
    assert L.hash_code(a) != L.hash_code(b)


# ---------------------------------------------------------------------------- parsing

VALID: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"profile": "small"}, {"profile": "small", "repo": "", "options": {}}),
    (
        {"profile": "small", "options": {"image": "py311"}},
        {"options": {"image": "py311"}},
    ),
    (
        {"profile": "small", "options": {"image--unlisted-choice": "ghcr.io/x/y:1"}},
        {"options": {"image--unlisted-choice": "ghcr.io/x/y:1"}},
    ),
    (
        {"profile": "repo", "repo": "https://h/r.git", "ref": "main", "commit": SHA.upper()},
        {"commit": SHA, "follow_branch": False, "build_ref": SHA},
    ),
    (
        {
            "profile": "repo",
            "repo": "https://h/r.git",
            "ref": "main",
            "follow_branch": True,
            "commit": SHA,
        },
        {"commit": "", "follow_branch": True, "build_ref": "main"},
    ),
    (
        {
            "profile": "repo",
            "repo": "https://h/r.git",
            "commit": SHA,
            "build_id": "b1",
            "note": " for the workshop ",
        },
        {"build_id": "b1", "note": "for the workshop"},
    ),
    (
        {"profile": "repo", "repo": "https://h/r.git", "commit": SHA, "subdir": "env/py"},
        {"subdir": "env/py", "is_repository": True},
    ),
]


@pytest.mark.parametrize(("body", "expect"), VALID)
def test_parse_valid(body: dict[str, Any], expect: dict[str, Any]) -> None:
    spec = L.parse_link_request(body, POLICY)
    for key, value in expect.items():
        assert getattr(spec, key) == value, key


INVALID: list[tuple[Any, str, int]] = [
    ([], "", 400),
    ({}, "profile", 400),
    ({"profile": ""}, "profile", 400),
    ({"profile": 3}, "profile", 400),
    ({"profile": "x" * 64}, "profile", 400),
    ({"profile": "a\nb"}, "profile", 400),
    ({"profile": "s", "options": ["a"]}, "options", 400),
    ({"profile": "s", "options": {"profile": "other"}}, "options.profile", 400),
    ({"profile": "s", "options": {"build_id": "x"}}, "options.build_id", 400),
    ({"profile": "s", "options": {"bad key": "x"}}, "options.bad key", 400),
    ({"profile": "s", "options": {"image": 1}}, "options.image", 400),
    ({"profile": "s", "options": {"image": "a\x00b"}}, "options.image", 400),
    ({"profile": "s", "options": {f"o{i}": "v" for i in range(40)}}, "options", 400),
    ({"profile": "s", "commit": SHA}, "repo", 400),
    ({"profile": "s", "follow_branch": True}, "repo", 400),
    ({"profile": "s", "subdir": "docs"}, "repo", 400),
    ({"profile": "s", "repo": "https://h/r.git"}, "commit", 400),
    ({"profile": "s", "repo": "https://h/r.git", "commit": "abc123"}, "commit", 400),
    ({"profile": "s", "repo": "https://h/r.git", "commit": "g" * 40}, "commit", 400),
    ({"profile": "s", "repo": "https://h/r.git", "follow_branch": True}, "ref", 400),
    ({"profile": "s", "repo": "https://h/r.git", "follow_branch": "yes"}, "follow_branch", 400),
    ({"profile": "s", "autostart": True}, "autostart", 403),
    ({"profile": "s", "note": "n" * 201}, "note", 400),
]


@pytest.mark.parametrize(("body", "field", "status"), INVALID)
def test_parse_invalid(body: Any, field: str, status: int) -> None:
    with pytest.raises(L.LinkError) as info:
        L.parse_link_request(body, POLICY)
    assert info.value.field == field
    assert info.value.status == status
    assert info.value.message


def test_autostart_allowed_when_admin_allows() -> None:
    spec = L.parse_link_request(
        {"profile": "s", "autostart": True}, L.LinkPolicy(allow_autostart=True)
    )
    assert spec.autostart


@pytest.mark.parametrize(
    ("spec", "build_id", "expect"),
    [
        (L.LinkSpec("s"), "", {"profile": "s"}),
        (L.LinkSpec("s", {"image": "py"}), "", {"profile": "s", "image": "py"}),
        (L.LinkSpec("r", {}, repo="u", commit=SHA), "b7", {"profile": "r", "build_id": "b7"}),
    ],
)
def test_user_options(spec: L.LinkSpec, build_id: str, expect: dict[str, str]) -> None:
    assert L.user_options(spec, build_id) == expect


# ---------------------------------------------------------------------------- expiry

EXPIRY: list[tuple[Any, L.LinkPolicy, float | None]] = [
    (None, POLICY, NOW + 30 * 86400),
    (None, L.LinkPolicy(default_expires_in=None, max_expires_in=None), None),
    (3600, POLICY, NOW + 3600),
    (60, POLICY, NOW + 60),
    (365 * 86400, POLICY, NOW + 365 * 86400),
    (0, L.LinkPolicy(max_expires_in=None), None),
    ("never", L.LinkPolicy(max_expires_in=None), None),
]


@pytest.mark.parametrize(("raw", "policy", "expect"), EXPIRY)
def test_expiry(raw: Any, policy: L.LinkPolicy, expect: float | None) -> None:
    assert L.parse_expiry(raw, NOW, policy) == expect


@pytest.mark.parametrize(
    ("raw", "policy", "message"),
    [
        (59, POLICY, "at least 60"),
        (-5, POLICY, "at least 60"),
        (365 * 86400 + 1, POLICY, "at most"),
        (0, POLICY, "must expire"),
        ("never", POLICY, "must expire"),
        ("3600", POLICY, "whole number"),
        (1.5, POLICY, "whole number"),
        (True, POLICY, "whole number"),
    ],
)
def test_expiry_refused(raw: Any, policy: L.LinkPolicy, message: str) -> None:
    with pytest.raises(L.LinkError, match=message) as info:
        L.parse_expiry(raw, NOW, policy)
    assert info.value.field == "expires_in"


def _link(expires_at: float | None = None, revoked_at: float | None = None) -> L.Link:
    return L.Link("id", "h", "alice", L.LinkSpec("s"), NOW - 10, expires_at, revoked_at)


@pytest.mark.parametrize(
    ("link", "state", "status"),
    [
        (_link(), "active", 200),
        (_link(expires_at=NOW + 1), "active", 200),
        (_link(expires_at=NOW), "expired", 410),
        (_link(expires_at=NOW - 1), "expired", 410),
        (_link(revoked_at=NOW - 1), "revoked", 404),
        (_link(expires_at=NOW - 1, revoked_at=NOW - 5), "revoked", 404),
    ],
)
def test_link_state(link: L.Link, state: str, status: int) -> None:
    assert L.link_state(link, NOW) == state
    assert L.STATE_STATUS[L.link_state(link, NOW)] == status


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ({"expires_in": 3600}, {"expires_at": NOW + 3600}),
        ({"revoked": True}, {"revoked_at": NOW}),
        ({"revoked": True, "expires_in": 60}, {"revoked_at": NOW, "expires_at": NOW + 60}),
    ],
)
def test_update(body: dict[str, Any], expect: dict[str, Any]) -> None:
    assert L.parse_link_update(body, NOW, POLICY) == expect


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ""),
        ([], ""),
        ({"revoked": False}, "revoked"),
        ({"owner": "bob"}, "owner"),
        ({"expires_in": 1}, "expires_in"),
    ],
)
def test_update_refused(body: Any, field: str) -> None:
    with pytest.raises(L.LinkError) as info:
        L.parse_link_update(body, NOW, POLICY)
    assert info.value.field == field


# ---------------------------------------------------------------------------- rate limit

RATE: list[tuple[list[float], int, float, bool, int]] = [
    ([], 3, 60, True, 0),
    ([NOW - 1, NOW - 2], 3, 60, True, 0),
    ([NOW - 1, NOW - 2, NOW - 3], 3, 60, False, 57),
    ([NOW - 59.5, NOW - 2, NOW - 3], 3, 60, False, 1),
    ([NOW - 60, NOW - 2, NOW - 3], 3, 60, True, 0),  # the oldest just left the window
    ([NOW - 100, NOW - 200, NOW - 300], 3, 60, True, 0),
    ([NOW + 5, NOW - 1], 2, 60, True, 0),  # future timestamps (clock skew) are ignored
    ([NOW - 10] * 5, 5, 60, False, 50),
    ([NOW - 10] * 5, 6, 60, True, 0),
    ([NOW - 10, NOW - 20, NOW - 30, NOW - 40], 2, 60, False, 40),
    ([], 0, 60, False, 60),  # limit 0 = creating links is off
    ([NOW - 3000], 1, 3600, False, 600),
]


@pytest.mark.parametrize(("recent", "limit", "window", "allowed", "retry"), RATE)
def test_rate_limit(
    recent: list[float], limit: int, window: float, allowed: bool, retry: int
) -> None:
    decision = L.check_rate(recent, NOW, limit, window)
    assert decision.allowed is allowed
    assert decision.retry_after == retry


def test_rate_limit_sequence() -> None:
    """Creating as fast as allowed: exactly `limit` per window succeed."""
    created: list[float] = []
    t = NOW
    accepted = 0
    for _ in range(100):
        if L.check_rate(created, t, 10, 60).allowed:
            created.append(t)
            accepted += 1
        t += 1  # one attempt per second for 100 s
    assert accepted == 20  # 10 in [0, 60), 10 in [60, 100)


# ---------------------------------------------------------------------------- running server

SITUATIONS: list[tuple[L.ServerSituation, list[str]]] = [
    (L.ServerSituation(), ["launch"]),
    (L.ServerSituation(named_allowed=True), ["launch"]),
    (L.ServerSituation(default_running=True), ["open", "replace"]),
    (L.ServerSituation(default_running=True, named_allowed=True), ["open", "replace", "named"]),
    (
        L.ServerSituation(default_running=True, named_allowed=True, named_count=2, named_limit=2),
        ["open", "replace"],
    ),
    (
        L.ServerSituation(default_running=True, named_allowed=True, named_count=1, named_limit=2),
        ["open", "replace", "named"],
    ),
    (L.ServerSituation(default_pending="spawn"), ["open", "replace"]),
    (L.ServerSituation(default_pending="stop"), ["replace"]),
    (L.ServerSituation(default_pending="stop", named_allowed=True), ["replace", "named"]),
]


@pytest.mark.parametrize(("situation", "actions"), SITUATIONS)
def test_offered_actions(situation: L.ServerSituation, actions: list[str]) -> None:
    assert L.offered_actions(situation) == actions


@pytest.mark.parametrize(
    ("model", "named", "expect"),
    [
        ({"servers": {}}, False, L.ServerSituation()),
        ({}, True, L.ServerSituation(named_allowed=True)),
        (
            {"servers": {"": {"ready": True, "pending": None}}},
            False,
            L.ServerSituation(default_running=True),
        ),
        (
            {"servers": {"": {"ready": False, "pending": "spawn"}, "a": {}, "b": {}}},
            True,
            L.ServerSituation(default_pending="spawn", named_allowed=True, named_count=2),
        ),
    ],
)
def test_situation_from_user_model(
    model: dict[str, Any], named: bool, expect: L.ServerSituation
) -> None:
    assert L.situation_from_user_model(model, named) == expect


@pytest.mark.parametrize(
    ("link_id", "taken", "expect"),
    [
        ("0123456789abcdef", [], "shared-01234567"),
        ("0123456789abcdef", ["shared-01234567"], "shared-01234567-2"),
        ("0123456789abcdef", ["shared-01234567", "shared-01234567-2"], "shared-01234567-3"),
        ("ABCDEF12", [], "shared-abcdef12"),
    ],
)
def test_named_server_name(link_id: str, taken: list[str], expect: str) -> None:
    name = L.named_server_name(link_id, taken)
    assert name == expect
    assert L.NAMED_SERVER_PATTERN.fullmatch(name)


# ---------------------------------------------------------------------------- what a link opens


@pytest.mark.parametrize(
    ("extra", "urlpath"),
    [
        ({}, ""),
        ({"urlpath": "lab/tree/notebooks/intro.ipynb"}, "lab/tree/notebooks/intro.ipynb"),
        ({"urlpath": "tree/My Notes.ipynb"}, "tree/My%20Notes.ipynb"),
        ({"labpath": "notebooks/intro.ipynb"}, "lab/tree/notebooks/intro.ipynb"),
    ],
)
def test_link_carries_urlpath(extra: dict[str, str], urlpath: str) -> None:
    spec = L.parse_link_request({"profile": "small", **extra}, POLICY)
    assert spec.urlpath == urlpath
    options = L.user_options(spec)
    assert options.get("urlpath", "") == urlpath and "labpath" not in options


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"urlpath": "../../hub/admin"}, "urlpath"),
        ({"urlpath": "%2e%2e/x"}, "urlpath"),
        ({"urlpath": "/etc/passwd"}, "urlpath"),
        ({"urlpath": "https://evil.example/x"}, "urlpath"),
        ({"labpath": "../x"}, "labpath"),
        ({"urlpath": "lab", "labpath": "x.ipynb"}, "labpath"),
    ],
)
def test_link_refuses_bad_urlpath(extra: dict[str, str], field: str) -> None:
    with pytest.raises(L.LinkError) as err:
        L.parse_link_request({"profile": "small", **extra}, POLICY)
    assert err.value.field == field and err.value.status == 400
    assert str(err.value).startswith(f"{field}: ")


def test_urlpath_survives_the_store_format() -> None:
    from fancy_env.sharing.store import spec_from_json, spec_to_json

    spec = L.parse_link_request({"profile": "small", "labpath": "a.ipynb"}, POLICY)
    assert spec_from_json(spec_to_json(spec)).urlpath == "lab/tree/a.ipynb"
