"""Registry credentials and auth challenges (pure: no I/O, tested with parameter tables).

Credentials come as a Docker config JSON, the format of `~/.docker/config.json` and of
`kubernetes.io/dockerconfigjson` Secrets::

    {"auths": {"ghcr.io": {"auth": "<base64 user:password>"},
               "registry.example.org": {"username": "u", "password": "p"},
               "myregistry.azurecr.io": {"identitytoken": "<refresh token>"}}}

Challenges are the `WWW-Authenticate` header of a 401 (RFC 7235): `Basic realm="..."` or the
Docker Registry token flow's `Bearer realm="...",service="...",scope="..."`.
Messages never contain a password or token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")


class RegistryConfigError(ValueError):
    """A credentials file that cannot be used; the message names the entry and the fix."""


@dataclass(frozen=True)
class RegistryCredential:
    """One registry's credentials: a user and password (or token), or an identity token."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def basic(self) -> str:
        """The `Authorization` value of HTTP Basic auth."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def engine_auth(self, registry_url: str) -> dict[str, str]:
        """repo2docker's `registry_credentials` (CONTAINER_ENGINE_REGISTRY_CREDENTIALS)."""
        if self.identity_token:
            return {"registry": registry_url, "username": "<token>", "password": ""}
        return {"registry": registry_url, "username": self.username, "password": self.password}


def registry_host(key: str) -> str:
    """An `auths` key or registry URL -> the bare `host[:port]` (Docker Hub -> docker.io)."""
    text = key.strip()
    host = urlsplit(text).netloc if "://" in text else text.split("/", 1)[0]
    host = host.lower()
    return "docker.io" if host in DOCKER_HUB_ALIASES else host


def _entry(key: str, value: Any) -> RegistryCredential:
    where = f"auths[{key!r}]"
    if not isinstance(value, dict):
        raise RegistryConfigError(f"{where} must be an object with 'auth' or 'username'")
    token = value.get("identitytoken") or value.get("identityToken") or ""
    if not isinstance(token, str):
        raise RegistryConfigError(f"{where}.identitytoken must be a string")
    auth = value.get("auth")
    if auth:
        if not isinstance(auth, str):
            raise RegistryConfigError(f"{where}.auth must be a base64 string of 'user:password'")
        try:
            decoded = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise RegistryConfigError(
                f"{where}.auth is not base64 of 'user:password' (make it with "
                "`printf %s user:password | base64 -w0`)"
            ) from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise RegistryConfigError(f"{where}.auth must decode to 'user:password' (no ':')")
        return RegistryCredential(user, password, token)
    user, password = value.get("username", ""), value.get("password", "")
    if not isinstance(user, str) or not isinstance(password, str):
        raise RegistryConfigError(f"{where}.username and .password must be strings")
    if not (user or token):
        raise RegistryConfigError(
            f"{where} has no credentials: give 'auth', 'username' and 'password', "
            "or 'identitytoken'"
        )
    return RegistryCredential(user, password, token)


def parse_docker_config(text: str) -> dict[str, RegistryCredential]:
    """A Docker config JSON -> {host: credential}. Raises RegistryConfigError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RegistryConfigError(f"not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("auths"), dict):
        raise RegistryConfigError(
            'must be a Docker config JSON: {"auths": {"<registry host>": {"auth": "..."}}}'
        )
    if data.get("credsStore") or data.get("credHelpers"):
        raise RegistryConfigError(
            "credsStore / credHelpers are not supported: put the credentials in 'auths'"
        )
    return {registry_host(k): _entry(k, v) for k, v in data["auths"].items()}


def credential_for(
    credentials: dict[str, RegistryCredential], registry: str
) -> RegistryCredential | None:
    """The credential for a registry host or URL, if any."""
    return credentials.get(registry_host(registry))


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(,|$)')


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="https://auth",service="reg",scope="repository:a/b:pull"` -> Challenge.

    Only the first challenge of the header is read; None when the header is empty or not a
    challenge."""
    text = header.strip()
    match = re.match(r"([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)", text)
    if not match:
        return None
    scheme, rest = match.group(1).lower(), text[match.end() :]
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        quoted, bare = m.group(2), m.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.setdefault(m.group(1).lower(), value)
        pos = m.end()
    return Challenge(scheme, params)


def pull_scope(repository: str) -> str:
    """The token scope the cache check needs for one repository."""
    return f"repository:{repository}:pull"


def token_from_response(body: bytes, now: float) -> tuple[str, float]:
    """A token endpoint's JSON answer -> (token, expiry time). Raises ValueError.

    Per the token spec: `token` (or `access_token`), `expires_in` seconds (default 60)."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the token endpoint did not answer a JSON object")
    token = data.get("token") or data.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("the token endpoint's answer has no 'token'")
    expires_in = data.get("expires_in", 60)
    if not isinstance(expires_in, int | float) or expires_in <= 0:
        expires_in = 60
    return token, now + float(expires_in)
