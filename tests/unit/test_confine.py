"""Pure rules for fetched checkouts: path confinement, submodule URLs, git's redirect errors."""

from __future__ import annotations

import pytest

from fancy_env.builder.confine import (
    CheckoutError,
    Submodule,
    check_submodule_path,
    escaping_reason,
    is_inside,
    parse_gitmodules,
    redirect_reason,
    resolve_submodule_url,
)
from fancy_env.builder.git import resolve_pin
from fancy_env.repos import RepoError, RepoPolicy, check_addresses, parse_repo

ROOT = "/srv/fetch/build-1/src"


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        (ROOT, True),
        (ROOT + "/", True),
        (ROOT + "/binder", True),
        (ROOT + "/a/../b", True),
        (ROOT + "/../src", True),
        (ROOT + "/..", False),
        ("/srv/fetch/build-1/src2", False),
        ("/srv/fetch/build-1/sr", False),
        ("/", False),
        ("/etc/shadow", False),
        (ROOT + "/../../build-2/src", False),
    ],
)
def test_is_inside(path: str, inside: bool) -> None:
    assert is_inside(ROOT, path) is inside


@pytest.mark.parametrize(
    ("rel", "resolved", "refused"),
    [
        ("r", "/", True),
        ("binder", "/decoy", True),
        ("apt.txt", "/decoy/secret", True),
        ("Dockerfile", "/etc/shadow", True),
        (".dockerignore", "/root/.ssh/id_rsa", True),
        ("docs", ROOT + "/real-docs", False),
        ("self", ROOT, False),
        ("up", "/srv/fetch/build-1", True),
    ],
)
def test_escaping_reason(rel: str, resolved: str, refused: bool) -> None:
    reason = escaping_reason(ROOT, rel, resolved)
    assert (reason is not None) is refused
    if reason:
        assert repr(rel) in reason and "outside the repository" in reason


PARENT = "https://git.example.org/group/project.git"


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("https://other.example.org/x.git", "https://other.example.org/x.git"),
        ("http://2130706433:8080/x.git", "http://2130706433:8080/x.git"),
        ("../lib.git", "https://git.example.org/group/lib.git"),
        ("./lib.git", "https://git.example.org/group/project.git/lib.git"),
        ("../../other/lib.git", "https://git.example.org/other/lib.git"),
        ("./../lib", "https://git.example.org/group/lib"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),  # then refused by parse_repo
        ("file:///etc", "file:///etc"),  # then refused by parse_repo
    ],
)
def test_resolve_submodule_url(url: str, resolved: str) -> None:
    assert resolve_submodule_url(PARENT, url) == resolved


def test_relative_url_cannot_climb_above_the_host() -> None:
    with pytest.raises(CheckoutError, match="climbs above"):
        resolve_submodule_url(PARENT, "../../../x.git")


POLICY = RepoPolicy(allowed_http_hosts=frozenset({"*"}))


@pytest.mark.parametrize(
    ("url", "addresses", "reason"),
    [
        ("http://[::ffff:127.0.0.1]:8080/x.git", None, "loopback"),
        ("http://2130706433:8080/x.git", ["127.0.0.1"], "resolves to a loopback"),
        ("http://0x7f000001:8080/x.git", ["127.0.0.1"], "resolves to a loopback"),
        ("https://metadata.example/x.git", ["169.254.169.254"], "link-local"),
        ("https://intranet.example/x.git", ["10.0.0.5"], "private"),
        ("git@github.com:org/x.git", None, "ssh"),
        ("file:///etc/passwd", None, "file:"),
        ("ext::sh -c touch% /tmp/pwned", None, "whitespace"),
        ("https://user:token@example.org/x.git", None, "credentials"),
        ("https://example.org/x.git", ["93.184.215.14"], ""),
    ],
)
def test_submodule_urls_get_the_typed_url_policy(
    url: str, addresses: list[str] | None, reason: str
) -> None:
    """The same two checks the service applies to a typed URL (the checkout calls both)."""
    try:
        spec = parse_repo(url, policy=POLICY)
        check_addresses(spec, addresses or [], POLICY)
    except RepoError as e:
        assert reason and reason in e.reason, e.reason
    else:
        assert not reason, f"{url} should be refused ({reason})"


@pytest.mark.parametrize(
    ("listing", "modules"),
    [
        ("", []),
        (
            "submodule.lib.path\nvendor/lib\0submodule.lib.url\n../lib.git\0",
            [Submodule("lib", "vendor/lib", "../lib.git")],
        ),
        (
            "submodule.a.b.path\nx\0submodule.a.b.url\nhttps://h/x\0submodule.c.path\ny\0",
            [Submodule("a.b", "x", "https://h/x")],
        ),
        ("core.bare\nfalse\0", []),
    ],
)
def test_parse_gitmodules(listing: str, modules: list[Submodule]) -> None:
    assert parse_gitmodules(listing) == modules


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("vendor/lib", False),
        ("lib", False),
        ("/etc", True),
        ("../outside", True),
        ("a/../../outside", True),
        ("..", True),
        (".git/hooks", True),
        ("", True),
    ],
)
def test_check_submodule_path(path: str, refused: bool) -> None:
    assert (check_submodule_path(path) is not None) is refused


@pytest.mark.parametrize(
    ("output", "redirect"),
    [
        ("fatal: unable to access 'http://h/r.git/': The requested URL returned error: 302", True),
        ("fatal: unable to access 'http://h/r.git/': The requested URL returned error: 301", True),
        ("fatal: unable to update url base from redirection", True),
        ("fatal: unable to access 'http://h/r.git/': The requested URL returned error: 404", False),
        ("fatal: repository 'http://h/r.git/' not found", False),
    ],
)
def test_redirect_reason(output: str, redirect: bool) -> None:
    reason = redirect_reason(output)
    assert (reason is not None) is redirect
    if reason:
        assert "redirected" in reason


@pytest.mark.parametrize(
    ("host", "port", "scheme", "address", "pin"),
    [
        ("git.example.org", None, "https", "93.184.215.14", "git.example.org:443:93.184.215.14"),
        ("git.example.org", 8080, "http", "93.184.215.14", "git.example.org:8080:93.184.215.14"),
        ("git.example.org", None, "http", "2001:db8::1", "git.example.org:80:[2001:db8::1]"),
        ("127.0.0.1", 9000, "http", "127.0.0.1", None),
        ("::1", 9000, "http", "::1", None),
    ],
)
def test_resolve_pin(host: str, port: int | None, scheme: str, address: str, pin: str) -> None:
    expected = ["-c", f"http.curloptResolve={pin}"] if pin else []
    assert resolve_pin(host, port, scheme, address) == expected
