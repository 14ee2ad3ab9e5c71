"""Registry credentials (Docker config JSON) and auth challenges: parameter tables (pure)."""

from __future__ import annotations

import base64
import json

import pytest

from fancy_env.builder.registry_auth import (
    Challenge,
    RegistryConfigError,
    RegistryCredential,
    credential_for,
    parse_challenge,
    parse_docker_config,
    registry_host,
    token_from_response,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("https://GHCR.io/v2/", "ghcr.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("quay.io/org", "quay.io"),
        ("europe-docker.pkg.dev", "europe-docker.pkg.dev"),
    ],
)
def test_registry_host(key: str, host: str) -> None:
    assert registry_host(key) == host


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"auth": b64("u:p")}, RegistryCredential("u", "p")),
        ({"auth": b64("u:p:with:colons")}, RegistryCredential("u", "p:with:colons")),
        ({"auth": b64("u:")}, RegistryCredential("u", "")),
        ({"username": "u", "password": "p"}, RegistryCredential("u", "p")),
        ({"auth": b64("u:p"), "username": "ignored"}, RegistryCredential("u", "p")),
        ({"identitytoken": "rt"}, RegistryCredential("", "", "rt")),
        ({"auth": b64("<token>:"), "identitytoken": "rt"}, RegistryCredential("<token>", "", "rt")),
        ({"username": "u", "password": "p", "email": "x@y"}, RegistryCredential("u", "p")),
    ],
)
def test_docker_config_entries(entry: dict[str, str], expected: RegistryCredential) -> None:
    creds = parse_docker_config(json.dumps({"auths": {"https://reg.example:5000": entry}}))
    assert creds == {"reg.example:5000": expected}
    assert credential_for(creds, "https://reg.example:5000") == expected
    assert credential_for(creds, "other.example") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must be a Docker config JSON"),
        ('{"auths": []}', "must be a Docker config JSON"),
        ('{"credsStore": "desktop", "auths": {}}', "credsStore"),
        ('{"auths": {"r": "x"}}', "auths['r'] must be an object"),
        ('{"auths": {"r": {}}}', "auths['r'] has no credentials"),
        ('{"auths": {"r": {"auth": "%%%"}}}', "auths['r'].auth is not base64"),
        (json.dumps({"auths": {"r": {"auth": b64("nocolon")}}}), "must decode to 'user:password'"),
        ('{"auths": {"r": {"auth": 5}}}', "auths['r'].auth must be a base64 string"),
        ('{"auths": {"r": {"username": 1, "password": "p"}}}', "must be strings"),
        ('{"auths": {"r": {"identitytoken": 1}}}', "identitytoken must be a string"),
    ],
)
def test_docker_config_errors_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(RegistryConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_docker_config(text)


def test_errors_and_repr_hold_no_secret() -> None:
    cred = parse_docker_config(json.dumps({"auths": {"r": {"auth": b64("u:s3cret")}}}))["r"]
    assert "s3cret" not in repr(cred)
    with pytest.raises(RegistryConfigError) as e:
        parse_docker_config(json.dumps({"auths": {"r": {"auth": b64("s3cret")}}}))
    assert "s3cret" not in str(e.value)


def test_credential_forms() -> None:
    cred = RegistryCredential("u", "p")
    assert cred.basic() == "Basic " + b64("u:p")
    assert cred.engine_auth("http://r:1") == {"registry": "http://r:1", "username": "u",
                                              "password": "p"}  # fmt: skip


REGISTRY_REALM = "https://auth.docker.io/token"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', Challenge("basic", {"realm": "Registry Realm"})),
        ("basic realm=x", Challenge("basic", {"realm": "x"})),
        (
            f'Bearer realm="{REGISTRY_REALM}",service="registry.docker.io",'
            'scope="repository:library/debian:pull"',
            Challenge(
                "bearer",
                {
                    "realm": REGISTRY_REALM,
                    "service": "registry.docker.io",
                    "scope": "repository:library/debian:pull",
                },
            ),
        ),  # fmt: skip
        (  # scopes with commas inside quotes, spaces around separators
            'Bearer realm="https://ghcr.io/token" , service="ghcr.io", '
            'scope="repository:o/r:pull,push"',
            Challenge(
                "bearer",
                {
                    "realm": "https://ghcr.io/token",
                    "service": "ghcr.io",
                    "scope": "repository:o/r:pull,push",
                },
            ),
        ),  # fmt: skip
        (
            'Bearer realm="https://t/a\\"b",error="invalid_token"',
            Challenge("bearer", {"realm": 'https://t/a"b', "error": "invalid_token"}),
        ),
        ("Bearer", Challenge("bearer", {})),
        ('BEARER REALM="https://t"', Challenge("bearer", {"realm": "https://t"})),
        (
            'Bearer realm="https://t",realm="https://evil"',
            Challenge("bearer", {"realm": "https://t"}),
        ),
        ("", None),
        ("   ", None),
        ('="x"', None),
    ],
)
def test_parse_challenge(header: str, expected: Challenge | None) -> None:
    assert parse_challenge(header) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"token": "t", "expires_in": 300}, ("t", 1300.0)),
        ({"access_token": "a", "token": ""}, ("a", 1060.0)),
        ({"token": "t"}, ("t", 1060.0)),
        ({"token": "t", "expires_in": -5}, ("t", 1060.0)),
        ({"token": "t", "expires_in": "300"}, ("t", 1060.0)),
    ],
)
def test_token_from_response(body: dict[str, object], expected: tuple[str, float]) -> None:
    assert token_from_response(json.dumps(body).encode(), 1000.0) == expected


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"token": 5}', b"nope"])
def test_token_response_errors(body: bytes) -> None:
    with pytest.raises(ValueError):
        token_from_response(body, 0.0)
