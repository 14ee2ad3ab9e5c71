"""Repository input: every refusal rule of issue 3 item 2, and the accepted forms."""

from __future__ import annotations

import pytest

from fancy_env.repos import (
    RepoError,
    RepoPolicy,
    check_addresses,
    classify_address,
    parse_repo,
)
from tests.support.repo_cases import ALLOW, ALLOWED_HTTP_HOSTS, DENY, REFUSED

POLICY = RepoPolicy(allowed_http_hosts=ALLOWED_HTTP_HOSTS, allow_patterns=ALLOW, deny_patterns=DENY)


@pytest.mark.parametrize(("repo", "ref", "subdir", "field", "reason"), REFUSED)
def test_refused(repo: str, ref: str, subdir: str, field: str, reason: str) -> None:
    with pytest.raises(RepoError) as info:
        parse_repo(repo, ref, subdir, POLICY)
    assert info.value.field == field
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("repo", "ref", "subdir", "url"),
    [
        ("owner/repo", "", "", "https://github.com/owner/repo"),
        ("gh:owner/repo.name", "v1.0", "", "https://github.com/owner/repo.name"),
        ("gl:group/sub/project", "main", "", "https://gitlab.com/group/sub/project"),
        ("https://Example.COM/a/b.git/", "", "", "https://example.com/a/b.git"),
        ("https://example.com:443/a/b", "", "", "https://example.com/a/b"),
        ("https://example.com:8443/a/b", "", "", "https://example.com:8443/a/b"),
        ("https://example.com/a/b", "refs/pull/1/head", "", "https://example.com/a/b"),
        ("https://example.com/a/b", "a" * 40, "docs/env/", "https://example.com/a/b"),
        ("https://bücher.example/a/b", "", "", "https://xn--bcher-kva.example/a/b"),
        ("http://127.0.0.1:8000/r.git", "", "", "http://127.0.0.1:8000/r.git"),
    ],
)
def test_accepted(repo: str, ref: str, subdir: str, url: str) -> None:
    policy = RepoPolicy(
        allowed_http_hosts=ALLOWED_HTTP_HOSTS, allowed_private_hosts=frozenset({"127.0.0.1"})
    )
    spec = parse_repo(repo, ref, subdir, policy)
    assert spec.url == url
    assert spec.ref == ref
    assert spec.subdir == subdir.strip("/")


def test_http_host_with_port_and_private_allowed() -> None:
    policy = RepoPolicy(allowed_http_hosts=frozenset({"10.1.2.3:8080"}), allow_private_hosts=True)
    assert parse_repo("http://10.1.2.3:8080/a/b", policy=policy).host == "10.1.2.3"
    with pytest.raises(RepoError, match="http is not allowed"):
        parse_repo("http://10.1.2.3:9090/a/b", policy=policy)


def test_subdir_changes_key() -> None:
    assert parse_repo("o/r", subdir="x").key != parse_repo("o/r").key


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "private"),
        ("140.82.112.3", None),
        ("2606:4700::1111", None),
    ],
)
def test_classify_address(address: str, kind: str | None) -> None:
    assert classify_address(address) == kind


def test_classify_rejects_names() -> None:
    with pytest.raises(ValueError):
        classify_address("example.com")


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["140.82.112.3", "127.0.0.1"], "resolves to a loopback address"),
        (["169.254.169.254"], "resolves to a link-local address"),
        (["10.0.0.5"], "resolves to a private address"),
        ([], "does not resolve"),
    ],
)
def test_check_addresses_refuses(addresses: list[str], reason: str) -> None:
    spec = parse_repo("https://example.com/a/b")
    with pytest.raises(RepoError, match=reason):
        check_addresses(spec, addresses, RepoPolicy())


def test_check_addresses_allows_public_and_admin_allowed() -> None:
    spec = parse_repo("https://example.com/a/b")
    check_addresses(spec, ["140.82.112.3"], RepoPolicy())
    check_addresses(
        spec, ["10.0.0.5"], RepoPolicy(allowed_private_hosts=frozenset({"example.com"}))
    )
    check_addresses(spec, ["127.0.0.1"], RepoPolicy(allow_private_hosts=True))
