"""Is an image already there? The registry HTTP API v2, or the local engine's API.

Both checks are one small asynchronous request on the hot path of a cache hit: a `HEAD` of
the manifest in the registry (anonymous, Basic auth or the token flow; a token is reused
until it expires), or `GET /images/<name>/json` on the engine's Unix socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from ..images import split_image
from .registry_auth import (
    Challenge,
    RegistryCredential,
    parse_challenge,
    pull_scope,
    registry_host,
    token_from_response,
)

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


CLIENT_ID = "fancy-env"
TOKEN_MARGIN = 5.0  # seconds: a token this close to its expiry is fetched again


class CacheCheckError(Exception):
    pass


class RegistryAuthError(CacheCheckError):
    """The registry refused us (401/403): not "not cached" but a failed request.

    The message names the registry and the fix; it holds no secret."""


def registry_url_for(image_prefix: str) -> str:
    """`127.0.0.1:5000/fancy-env/` -> `http://127.0.0.1:5000` (https unless loopback)."""
    host = image_prefix.split("/", 1)[0]
    if not host or ("." not in host and ":" not in host and host != "localhost"):
        return ""
    bare = host.rsplit(":", 1)[0]
    scheme = "http" if bare in ("127.0.0.1", "localhost", "[::1]") else "https"
    return f"{scheme}://{host}"


class RegistryChecker:
    """`HEAD /v2/<name>/manifests/<tag>`, anonymous, with Basic auth, or with the token flow.

    A 401 with a `Bearer` challenge gets a token from the challenge's realm (with the
    credential, if any, as Basic auth; an identity token as an OAuth2 refresh token) and the
    request is retried; tokens are kept until they expire. A 401 with a `Basic` challenge is
    retried once with the credential. A refusal after that raises RegistryAuthError."""

    def __init__(
        self,
        registry_url: str,
        credential: RegistryCredential | None = None,
        source: str = "BuilderApp.registry_credentials_file",
    ) -> None:
        self.registry_url = registry_url.rstrip("/")
        self.host = registry_host(self.registry_url)
        self.credential = credential
        self.source = source
        self.tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self.scheme = ""  # "basic" or "bearer" once a challenge was seen

    async def exists(self, image: str) -> bool:
        return await self.find(image) is not None

    async def find(self, image: str) -> str | None:
        """The manifest digest of `image` ("" if the registry sends none), None if absent."""
        name, tag = split_image(image)
        response = await self._manifest(name, tag, image)
        if response is None:
            return None
        return str(response.headers.get("Docker-Content-Digest", "")).strip()

    async def verify(self, image: str, digest: str) -> bool:
        """Whether the manifest `digest` of `image`'s repository is still in the registry
        (a `HEAD` by digest: a tag pushed over since does not count)."""
        if not digest:
            return await self.exists(image)
        name, _tag = split_image(image)
        return await self._manifest(name, digest, image) is not None

    async def _manifest(self, name: str, reference: str, image: str) -> HTTPResponse | None:
        """`HEAD /v2/<path>/manifests/<tag or digest>`: the answer, None on 404."""
        path = name.split("/", 1)[1] if "/" in name else name
        url = f"{self.registry_url}/v2/{path}/manifests/{quote(reference)}"
        scope = pull_scope(path)
        response = await self._head(url, self._cached_auth(scope))
        if response.code == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            authorization = await self._answer(challenge, scope)
            response = await self._head(url, authorization)
            if response.code == 401:
                again = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                scope_denied = again is not None and again.params.get("error") == (
                    "insufficient_scope"
                )  # fmt: skip
                raise self._refused(403 if scope_denied else 401, path)
        if response.code == 403:
            raise self._refused(403, path)
        if response.code == 404:
            return None
        if response.code != 200:
            raise CacheCheckError(f"registry {self.host} answered {response.code} for {image}")
        return response

    async def auth_headers(self, repository: str) -> dict[str, str]:
        """Authorization for image retention's calls on `repository` ('' = the catalogue):
        the credential when the registry asks for Basic, else a token for pull and delete on
        the repository (or for the catalogue)."""
        response = await self._fetch(f"{self.registry_url}/v2/", method="GET")
        if response.code != 401:
            return {}
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        scope = f"repository:{repository}:pull,delete" if repository else "registry:catalog:*"
        return {"Authorization": await self._answer(challenge, scope)}

    async def _head(self, url: str, authorization: str) -> HTTPResponse:
        headers = {"Accept": MANIFEST_TYPES}
        if authorization:
            headers["Authorization"] = authorization
        return await self._fetch(url, method="HEAD", headers=headers)

    async def _fetch(self, url: str, **kwargs: Any) -> HTTPResponse:
        try:
            response = await AsyncHTTPClient().fetch(
                url, raise_error=False, request_timeout=10, follow_redirects=False, **kwargs
            )
        except OSError as e:
            raise CacheCheckError(f"registry {self.host} unreachable: {e}") from e
        if response.code == 599:
            raise CacheCheckError(f"registry {self.host} unreachable: {response.error}")
        return response

    def _cached_auth(self, scope: str) -> str:
        if self.scheme == "basic" and self.credential is not None:
            return self.credential.basic()
        now = time.time()
        for (_realm, _service, s), (token, expires) in list(self.tokens.items()):
            if s == scope and expires > now:
                return f"Bearer {token}"
        return ""

    async def _answer(self, challenge: Challenge | None, scope: str) -> str:
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise RegistryAuthError(
                f"registry {self.host} asks for authentication with an unsupported challenge "
                f"({challenge.scheme if challenge else 'none'}): use a registry with Basic or "
                "token (Bearer) auth"
            )
        self.scheme = challenge.scheme
        if challenge.scheme == "basic":
            if self.credential is None:
                raise self._no_credential()
            return self.credential.basic()
        return "Bearer " + await self._token(challenge, scope)

    async def _token(self, challenge: Challenge, scope: str) -> str:
        realm, service = challenge.realm, challenge.params.get("service", "")
        scope = challenge.params.get("scope") or scope
        key = (realm, service, scope)
        cached = self.tokens.get(key)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        if not realm.startswith(("https://", "http://")):
            raise RegistryAuthError(
                f"registry {self.host} sent a token challenge without a valid realm URL"
            )
        response = await self._token_request(realm, service, scope)
        if response.code in (401, 403):
            raise self._refused(response.code, token_realm=realm)
        if response.code != 200:
            raise CacheCheckError(
                f"token service {realm} for registry {self.host} answered {response.code}"
            )
        try:
            token, expires = token_from_response(response.body, time.time())
        except ValueError as e:
            raise CacheCheckError(f"token service {realm} for registry {self.host}: {e}") from e
        if len(self.tokens) > 1000:
            self.tokens.clear()
        self.tokens[key] = (token, expires - TOKEN_MARGIN)
        return token

    async def _token_request(self, realm: str, service: str, scope: str) -> HTTPResponse:
        cred = self.credential
        if cred is not None and cred.identity_token:  # OAuth2 refresh token (token spec)
            form = {"grant_type": "refresh_token", "refresh_token": cred.identity_token,
                    "service": service, "scope": scope, "client_id": CLIENT_ID}  # fmt: skip
            return await self._fetch(
                realm, method="POST", body=urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
        query = urlencode({k: v for k, v in (("service", service), ("scope", scope)) if v})
        headers = {"Authorization": cred.basic()} if cred is not None else {}
        sep = "&" if "?" in realm else "?"
        return await self._fetch(f"{realm}{sep}{query}", method="GET", headers=headers)

    def _no_credential(self) -> RegistryAuthError:
        return RegistryAuthError(
            f"registry {self.host} requires credentials and the build service has none for "
            f"it: set {self.source} to a Docker config JSON with an auths entry for "
            f"{self.host!r} (see docs/builder.md, 'Registry credentials')"
        )

    def _refused(self, code: int, path: str = "", token_realm: str = "") -> RegistryAuthError:
        if self.credential is None:
            return self._no_credential()
        who = f"user {self.credential.username!r}" if self.credential.username else "the token"
        where = f"token service {token_realm} of registry {self.host}" if token_realm else (
            f"registry {self.host}"
        )  # fmt: skip
        if code == 403:
            return RegistryAuthError(
                f"{where} denied {who} access{' to ' + path if path else ''} (HTTP 403): give "
                "that account pull and push rights on the image prefix's repositories"
            )
        return RegistryAuthError(
            f"{where} refused the credentials of {who} (HTTP 401): fix the auths entry for "
            f"{self.host!r} in {self.source} (see docs/builder.md, 'Registry credentials')"
        )


class EngineChecker:
    """Ask the local Docker (or podman) engine over its Unix socket."""

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path

    async def exists(self, image: str) -> bool:
        return await self.inspect(image) is not None

    async def find(self, image: str) -> str | None:
        """The engine's image ID of `image` (what Docker accepts to pin it), None if absent."""
        info = await self.inspect(image)
        return None if info is None else str(info.get("Id", ""))

    async def verify(self, image: str, digest: str) -> bool:
        """Whether the engine still holds `digest` (an image ID; "" = the tag `image`)."""
        return await self.inspect(digest or image) is not None

    async def inspect(self, reference: str) -> dict[str, Any] | None:
        """`GET /images/<reference>/json` (a name:tag, name@digest or ID); None on 404."""
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=1 << 20)
        except OSError as e:
            raise CacheCheckError(f"container engine unreachable: {e}") from e
        try:
            path = f"/images/{quote(reference, safe='')}/json"
            writer.write(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode("ascii"))
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) < 2:
            raise CacheCheckError("container engine gave no answer")
        code = int(parts[1])
        if code == 404:
            return None
        if code != 200:
            raise CacheCheckError(f"container engine answered {code}")
        try:
            info = json.loads(body)
        except ValueError:
            raise CacheCheckError("container engine sent an unreadable image record") from None
        return info if isinstance(info, dict) else {}

    async def pull(self, image: str, auth: dict[str, str] | None) -> None:
        """`POST /images/create`: the engine pulls `image` (`name:tag` or `name@digest`),
        with `auth` for that request only."""
        name, at, digest = image.partition("@")
        name, tag = (name, digest) if at else split_image(image)
        query = urlencode({"fromImage": name, "tag": tag})
        header = ""
        if auth:
            blob = json.dumps({"username": auth["username"], "password": auth["password"],
                               "serveraddress": registry_host(auth["registry"])})  # fmt: skip
            header = "X-Registry-Auth: " + base64.urlsafe_b64encode(blob.encode()).decode() + "\r\n"
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=1 << 20)
        except OSError as e:
            raise CacheCheckError(f"container engine unreachable: {e}") from e
        try:
            request = f"POST /images/create?{query} HTTP/1.0\r\nHost: docker\r\n{header}\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            body = (await reader.read()).decode("utf-8", "replace")
        finally:
            writer.close()
        status, _, rest = body.partition("\r\n")
        error = re.search(r'"error"\s*:\s*"((?:[^"\\]|\\.)*)"', rest) or re.search(
            r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', rest
        )
        if " 200 " not in status + " " or error:
            detail = error.group(1) if error else status
            raise CacheCheckError(f"the engine could not pull {image} from the registry: {detail}")


class LocalCopyChecker:
    """The registry has it, and so does the local engine the servers start from.

    On one machine (the Docker executor, DockerSpawner on the same engine) a server starts
    from the engine's copy and never pulls: only the build service holds the registry's
    credentials. When the registry has an image the engine lacks (pruned, another engine
    built it), the service pulls it through the engine's API with the credential in that one
    request (`X-Registry-Auth`; nothing is stored, no `docker login`). A failed pull makes
    the image "not cached", so it is rebuilt and the server still launches."""

    def __init__(
        self, registry: RegistryChecker, engine: EngineChecker, timeout: float = 600
    ) -> None:
        self.registry = registry
        self.engine = engine
        self.timeout = timeout

    async def auth_headers(self, repository: str) -> dict[str, str]:
        """The registry's authorization (image retention's calls)."""
        return await self.registry.auth_headers(repository)

    async def exists(self, image: str) -> bool:
        return await self.find(image) is not None

    async def find(self, image: str) -> str | None:
        """The registry's manifest digest, once the engine holds the image too."""
        digest = await self.registry.find(image)
        if digest is None:
            return None
        if not await self.engine.exists(image):
            await self._pull(image)
        return digest

    async def verify(self, image: str, digest: str) -> bool:
        """The registry still has `digest` and the engine holds `name@digest` (pulled by
        digest when it lacks it); a failed pull counts as gone (the launch rebuilds)."""
        if not await self.registry.verify(image, digest):
            return False
        reference = f"{split_image(image)[0]}@{digest}" if digest else image
        if await self.engine.exists(reference):
            return True
        try:
            await self._pull(reference)
        except (CacheCheckError, TimeoutError):
            return False
        return await self.engine.exists(reference)

    async def _pull(self, reference: str) -> None:
        credential = self.registry.credential
        auth = credential.engine_auth(self.registry.registry_url) if credential else None
        await asyncio.wait_for(self.engine.pull(reference, auth), self.timeout)


class TableChecker:
    """No registry or engine to ask (the fake executor): the images table decides."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def exists(self, image: str) -> bool:
        return await self.store.image(image) is not None

    async def find(self, image: str) -> str | None:
        return "" if await self.exists(image) else None

    async def verify(self, image: str, digest: str) -> bool:
        return await self.exists(image)


async def find_digest(checker: Any, image: str) -> str | None:
    """`checker.find(image)` (the digest, "" if unknown, None if absent); checkers that only
    answer `exists` give ""."""
    find = getattr(checker, "find", None)
    if find is not None:
        found = await find(image)
        return None if found is None else str(found)
    return "" if await checker.exists(image) else None


async def verify_digest(checker: Any, image: str, digest: str) -> bool:
    """A fresh check that the pinned `digest` of `image` is still there."""
    verify = getattr(checker, "verify", None)
    if verify is not None:
        return bool(await verify(image, digest))
    return bool(await checker.exists(image))


class RememberingChecker:
    """Remembers images found (and their digests) for `ttl` seconds: names are
    commit-addressed, so an image that exists keeps existing, unless it is removed (the
    retention policy forgets what it removes; a launch verifies its digest afresh with
    `verify`, which forgets an image found gone)."""

    def __init__(self, inner: Any, ttl: float) -> None:
        self.inner = inner
        self.ttl = ttl
        self.found: dict[str, tuple[float, str]] = {}

    async def auth_headers(self, repository: str) -> dict[str, str]:
        """The wrapped checker's registry authorization, if it speaks to a registry."""
        inner = getattr(self.inner, "auth_headers", None)
        return dict(await inner(repository)) if inner is not None else {}

    def remember(self, image: str, digest: str = "") -> None:
        """An image this service just built and pushed."""
        self.found[image] = (time.monotonic(), digest)

    def forget(self, image: str) -> None:
        """An image that was removed (retention, or found gone at a launch)."""
        self.found.pop(image, None)

    async def exists(self, image: str) -> bool:
        return await self.find(image) is not None

    async def find(self, image: str) -> str | None:
        now = time.monotonic()
        seen = self.found.get(image)
        if seen is not None and now - seen[0] < self.ttl:
            return seen[1]
        digest = await find_digest(self.inner, image)
        if digest is not None:
            if len(self.found) > 10000:
                self.found.clear()
            self.found[image] = (now, digest)
        return digest

    async def verify(self, image: str, digest: str) -> bool:
        present = await verify_digest(self.inner, image, digest)
        if not present:
            self.forget(image)
        return present
