"""The pure rules of private repositories (fancy_env/builder/forge_auth.py), as tables."""

from __future__ import annotations

import base64

import pytest

from fancy_env.builder.forge_auth import (
    REDACTED,
    CredentialError,
    GitAuth,
    check_count,
    check_token,
    check_username,
    git_env_for,
    host_label,
    origin_of,
    parse_host,
)
from fancy_env.repos import RepoPolicy

PUBLIC = RepoPolicy()
LOOPBACK = RepoPolicy(
    allowed_http_hosts=frozenset({"127.0.0.1"}), allowed_private_hosts=frozenset({"127.0.0.1"})
)


@pytest.mark.parametrize(
    ("raw", "policy", "origin"),
    [
        ("github.com", PUBLIC, "https://github.com"),
        ("GitHub.com", PUBLIC, "https://github.com"),
        ("https://gitlab.example.org/", PUBLIC, "https://gitlab.example.org"),
        ("https://github.com:443", PUBLIC, "https://github.com"),
        ("https://git.example.org:8443", PUBLIC, "https://git.example.org:8443"),
        ("  github.com  ", PUBLIC, "https://github.com"),
        ("http://127.0.0.1:8080", LOOPBACK, "http://127.0.0.1:8080"),
        ("127.0.0.1:8080", LOOPBACK, "https://127.0.0.1:8080"),
    ],
)
def test_parse_host_accepts(raw: str, policy: RepoPolicy, origin: str) -> None:
    assert parse_host(raw, policy) == origin


@pytest.mark.parametrize(
    ("raw", "policy", "says"),
    [
        ("", PUBLIC, "is required"),
        (None, PUBLIC, "is required"),
        (42, PUBLIC, "is required"),
        ("github.com/owner", PUBLIC, "without path"),
        ("https://user@github.com", PUBLIC, "without path or user"),
        ("https://github.com/?x=1", PUBLIC, "without path"),
        ("http://github.com", PUBLIC, "http is not allowed"),
        ("http://127.0.0.1:8080", PUBLIC, "http is not allowed"),
        ("https://127.0.0.1", PUBLIC, "loopback"),
        ("https://10.0.0.1", PUBLIC, "private"),
        ("https://169.254.169.254", PUBLIC, "link-local"),
        ("ssh://github.com", PUBLIC, "not allowed"),
        ("file:///etc", PUBLIC, "without path"),
        ("https://bad_host!", PUBLIC, "not a valid host"),
        ("x" * 301, PUBLIC, "longer than 300"),
    ],
)
def test_parse_host_refuses_naming_the_field(raw: object, policy: RepoPolicy, says: str) -> None:
    with pytest.raises(CredentialError) as err:
        parse_host(raw, policy)
    assert err.value.field == "host"
    assert says in err.value.message


def test_parse_host_ignores_repository_patterns() -> None:
    """allowed_repos patterns name repositories, not hosts: a host is still accepted."""
    policy = RepoPolicy(allow_patterns=(r"https://github\.com/course/.*",))
    assert parse_host("github.com", policy) == "https://github.com"


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("ghp_" + "a" * 36, True),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", True),
        ("glpat-xxxxxxxxxxxxxxxxxxxx", True),
        ("0123456789abcdef0123456789abcdef01234567", True),
        ("a+b/c=d~e.f_g-h", True),
        ("short", False),
        ("", False),
        (None, False),
        ("has space inside", False),
        ("colon:inside123", False),
        ("new\nline12345", False),
        ("x" * 512, True),
        ("x" * 513, False),
        ("ünïcödé-token", False),
    ],
)
def test_check_token(token: object, ok: bool) -> None:
    if ok:
        assert check_token(token) == token
    else:
        with pytest.raises(CredentialError) as err:
            check_token(token)
        assert err.value.field == "token"
        assert str(token) not in err.value.message or not token  # never echoed


@pytest.mark.parametrize(
    ("username", "result"),
    [("", ""), (None, ""), ("oauth2", "oauth2"), ("alice@example.org", "alice@example.org")],
)
def test_check_username_accepts(username: object, result: str) -> None:
    assert check_username(username) == result


@pytest.mark.parametrize("username", ["a:b", "with space", "x" * 129, 7, "tab\t"])
def test_check_username_refuses(username: object) -> None:
    with pytest.raises(CredentialError) as err:
        check_username(username)
    assert err.value.field == "username"


@pytest.mark.parametrize(
    ("stored", "replacing", "limit", "ok"),
    [(0, False, 10, True), (9, False, 10, True), (10, False, 10, False), (10, True, 10, True),
     (500, False, 0, True), (1, False, 1, False)],
)  # fmt: skip
def test_check_count(stored: int, replacing: bool, limit: int, ok: bool) -> None:
    if ok:
        check_count(stored, replacing, limit)
    else:
        with pytest.raises(CredentialError, match="max_per_user"):
            check_count(stored, replacing, limit)


@pytest.mark.parametrize(
    ("url", "applies"),
    [
        ("https://git.example.org/course/private.git", True),
        ("https://git.example.org/other", True),
        ("http://git.example.org/course/private.git", False),  # another scheme
        ("https://git.example.org:8443/course/private.git", False),  # another port
        ("https://evil.example.org/course/private.git", False),
        ("https://git.example.org.evil.example/x", False),
        ("https://sub.git.example.org/x", False),
        ("https://GIT.example.org/x", True),
    ],
)
def test_credential_applies_to_its_exact_origin_only(url: str, applies: bool) -> None:
    auth = GitAuth("https://git.example.org", "tok-12345678")
    assert auth.applies_to(url) is applies
    assert bool(git_env_for(auth, url)) is applies


def test_header_and_git_env() -> None:
    auth = GitAuth("http://127.0.0.1:8080", "canary-token-1", username="alice")
    assert base64.b64decode(auth.header.split()[1]) == b"alice:canary-token-1"
    default = GitAuth("https://github.com", "tok-12345678")
    assert base64.b64decode(default.header.split()[1]) == b"x-access-token:tok-12345678"
    env = auth.git_env()
    assert env == {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.http://127.0.0.1:8080/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: {auth.header}",
    }
    assert "canary-token-1" not in repr(auth)  # never in a log line or a traceback's locals


def test_scrub() -> None:
    auth = GitAuth("https://h.example", "secret-token-9")
    text = f"failed: secret-token-9 and {auth.header}"
    assert auth.scrub(text) == f"failed: {REDACTED} and {REDACTED}"


@pytest.mark.parametrize(
    ("url", "origin", "label"),
    [
        ("https://github.com/o/r", "https://github.com", "github.com"),
        ("http://127.0.0.1:8080/r.git", "http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://h.example:8443/r", "https://h.example:8443", "h.example:8443"),
    ],
)
def test_origin_and_label(url: str, origin: str, label: str) -> None:
    assert origin_of(url) == origin
    assert host_label(origin) == label
