"""Is an image already there? The registry HTTP API v2, or the local engine's API.

Both checks are one small asynchronous request on the hot path of a cache hit: a `HEAD` of
the manifest in the registry, or `GET /images/<name>/json` on the engine's Unix socket.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..images import split_image

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


class CacheCheckError(Exception):
    pass


def registry_url_for(image_prefix: str) -> str:
    """`127.0.0.1:5000/fancy-env/` -> `http://127.0.0.1:5000` (https unless loopback)."""
    host = image_prefix.split("/", 1)[0]
    if not host or ("." not in host and ":" not in host and host != "localhost"):
        return ""
    bare = host.rsplit(":", 1)[0]
    scheme = "http" if bare in ("127.0.0.1", "localhost", "[::1]") else "https"
    return f"{scheme}://{host}"


class RegistryChecker:
    def __init__(self, registry_url: str, username: str = "", password: str = "") -> None:
        self.registry_url = registry_url.rstrip("/")
        self.auth = ""
        if username:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.auth = f"Basic {token}"

    async def exists(self, image: str) -> bool:
        name, tag = split_image(image)
        path = name.split("/", 1)[1] if "/" in name else name
        url = f"{self.registry_url}/v2/{path}/manifests/{quote(tag)}"
        headers = {"Accept": MANIFEST_TYPES}
        if self.auth:
            headers["Authorization"] = self.auth
        try:
            await AsyncHTTPClient().fetch(url, method="HEAD", headers=headers, request_timeout=10)
        except HTTPClientError as e:
            if e.code == 404:
                return False
            raise CacheCheckError(f"registry answered {e.code} for {name}:{tag}") from e
        except OSError as e:
            raise CacheCheckError(f"registry unreachable: {e}") from e
        return True


class EngineChecker:
    """Ask the local Docker (or podman) engine over its Unix socket."""

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path

    async def exists(self, image: str) -> bool:
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError as e:
            raise CacheCheckError(f"container engine unreachable: {e}") from e
        try:
            request = f"GET /images/{quote(image, safe='')}/json HTTP/1.0\r\nHost: docker\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
        finally:
            writer.close()
        parts = status_line.split()
        if len(parts) < 2:
            raise CacheCheckError("container engine gave no answer")
        code = int(parts[1])
        if code == 404:
            return False
        if code != 200:
            raise CacheCheckError(f"container engine answered {code}")
        return True


class TableChecker:
    """No registry or engine to ask (the fake executor): the images table decides."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def exists(self, image: str) -> bool:
        return self.store.image(image) is not None


class RememberingChecker:
    """Remembers images found for `ttl` seconds: names are commit-addressed, so an image
    that exists keeps existing (unless the registry is pruned, hence the TTL)."""

    def __init__(self, inner: Any, ttl: float) -> None:
        self.inner = inner
        self.ttl = ttl
        self.found: dict[str, float] = {}

    def remember(self, image: str) -> None:
        """An image this service just built and pushed."""
        self.found[image] = time.monotonic()

    def forget(self, image: str) -> None:
        """An image that was removed (retention): ask again next time."""
        self.found.pop(image, None)

    async def exists(self, image: str) -> bool:
        now = time.monotonic()
        seen = self.found.get(image)
        if seen is not None and now - seen < self.ttl:
            return True
        present = bool(await self.inner.exists(image))
        if present:
            if len(self.found) > 10000:
                self.found.clear()
            self.found[image] = now
        return present
