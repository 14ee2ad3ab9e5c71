"""Image retention, the I/O side: list images, find what is in use, remove, collect garbage.

`Collector.run(dry_run)` lists this service's images (the images table, the local engine over
its Unix socket, the registry's `/v2/_catalog` and tags), gathers the images in use (builds in
progress and just requested, active environment links, running servers per the hub API,
containers on the engine), asks the pure policy (`retention.decide`) and, unless it is a dry
run, removes: the engine's tag, the registry manifest by digest, then the build records
(marked `removed`, so the spawner's confirm refuses them and links build again), the images
table row and the cache check's memory. Then the registry's garbage collection when its
config file is known (one machine); on a cloud registry that is the provider's job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, func, select, update
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse

from ..images import image_name, split_image
from ..repos import RepoError, RepoPolicy, parse_repo
from .db import Build, ImageRecord, Store
from .events import ACTIVE_PHASES
from .retention import (
    Decision,
    ImageInfo,
    RetentionPolicy,
    decide,
    registry_digests_to_delete,
    total_bytes,
)

REMOVED = "removed"  # status of a build whose image the retention policy removed
MANIFEST_ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)
AuthHeaders = Callable[[str], Awaitable[Mapping[str, str]]]


class GCError(Exception):
    """Retention could not tell what is in use, or could not list images: nothing removed."""


async def engine_request(socket_path: str, method: str, path: str) -> tuple[int, Any]:
    """One Docker API call over the Unix socket (HTTP/1.0: the body ends at EOF)."""
    try:
        reader, writer = await asyncio.open_unix_connection(socket_path)
    except OSError as e:
        raise GCError(f"container engine unreachable: {e}") from e
    try:
        writer.write(f"{method} {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode("ascii"))
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 120)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2:
        raise GCError("container engine gave no answer")
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        data = body.decode("utf-8", "replace")
    return int(parts[1]), data


class Engine:
    """The local engine's images and containers (Docker or podman API)."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    async def images(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Tag under `prefix` -> {id, created, size}."""
        status, data = await engine_request(self.socket_path, "GET", "/images/json")
        if status != 200 or not isinstance(data, list):
            raise GCError(f"listing the engine's images failed ({status})")
        found: dict[str, dict[str, Any]] = {}
        for item in data:
            for tag in item.get("RepoTags") or []:
                if tag.startswith(prefix):
                    found[tag] = {
                        "id": item.get("Id", ""),
                        "created": float(item.get("Created") or 0),
                        "size": int(item.get("Size") or 0),
                    }
        return found

    async def containers(self) -> list[dict[str, Any]]:
        path = "/containers/json?all=1"
        status, data = await engine_request(self.socket_path, "GET", path)
        if status != 200 or not isinstance(data, list):
            raise GCError(f"listing the engine's containers failed ({status})")
        return data

    async def remove(self, name: str) -> str:
        """Untag (and remove when it was the last tag); '' on success, else why not."""
        status, data = await engine_request(
            self.socket_path, "DELETE", f"/images/{quote(name, safe='')}"
        )
        if status in (200, 404):
            return ""
        message = data.get("message", data) if isinstance(data, dict) else data
        return f"engine answered {status}: {message}"


async def no_auth(_repository: str) -> Mapping[str, str]:
    return {}


def checker_auth(checker: Any) -> AuthHeaders:
    """The cache checker's registry authorization (`auth_headers(repository)`; the wrapping
    checkers pass it through), or none for checkers that speak to no registry."""
    provider = getattr(checker, "auth_headers", None)
    return provider if callable(provider) else no_auth


class Registry:
    """Registry HTTP API v2: catalogue, tags, manifests, delete by digest."""

    def __init__(self, url: str, auth: AuthHeaders = no_auth) -> None:
        self.url = url.rstrip("/")
        self.auth = auth

    async def _fetch(
        self, path: str, repository: str = "", method: str = "GET", accept: str = ""
    ) -> HTTPResponse:
        headers = dict(await self.auth(repository))
        if accept:
            headers["Accept"] = accept
        return await AsyncHTTPClient().fetch(
            self.url + path, method=method, headers=headers, request_timeout=30
        )

    async def repositories(self, path_prefix: str) -> list[str]:
        names: list[str] = []
        path = "/v2/_catalog?n=1000"
        while path:
            r = await self._fetch(path)
            names += [n for n in json.loads(r.body).get("repositories") or []]
            link = r.headers.get("Link", "")
            path = link.split(";")[0].strip("<> ") if 'rel="next"' in link else ""
        return [n for n in names if n.startswith(path_prefix)]

    async def tags(self, repository: str) -> list[str]:
        try:
            r = await self._fetch(f"/v2/{repository}/tags/list", repository)
        except HTTPClientError as e:
            if e.code == 404:
                return []
            raise
        return list(json.loads(r.body).get("tags") or [])

    async def manifest(self, repository: str, tag: str) -> tuple[str, int, str]:
        """(digest, compressed size of config + layers, config digest)."""
        r = await self._fetch(
            f"/v2/{repository}/manifests/{quote(tag)}", repository, accept=MANIFEST_ACCEPT
        )
        body = json.loads(r.body)
        layers = body.get("layers") or []
        config = body.get("config") or {}
        size = int(config.get("size") or 0) + sum(int(x.get("size") or 0) for x in layers)
        digest = r.headers.get("Docker-Content-Digest") or (
            "sha256:" + hashlib.sha256(r.body).hexdigest()
        )
        return digest, size, str(config.get("digest", ""))

    async def created(self, repository: str, config_digest: str) -> float:
        if not config_digest:
            return 0.0
        r = await self._fetch(f"/v2/{repository}/blobs/{config_digest}", repository)
        stamp = str(json.loads(r.body).get("created") or "")
        try:
            return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
        except ValueError:
            return 0.0

    async def delete(self, repository: str, digest: str) -> str:
        try:
            await self._fetch(f"/v2/{repository}/manifests/{digest}", repository, "DELETE")
        except HTTPClientError as e:
            if e.code == 404:
                return ""
            hint = " (turn on storage.delete.enabled in its config)" if e.code == 405 else ""
            return f"registry answered {e.code} deleting {repository}@{digest}{hint}"
        return ""


@dataclass
class GCConfig:
    image_prefix: str
    policy: RetentionPolicy
    docker_socket: str = ""  # '' = no local engine to clean
    registry_url: str = ""
    registry_gc_config: str = ""  # the registry's config file: run its garbage collection
    registry_gc_command: tuple[str, ...] = ("docker-registry", "garbage-collect")
    recent_seconds: float = 600.0
    hub_api_url: str = ""
    hub_api_token: str = ""


@dataclass
class GCReport:
    dry_run: bool
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    registry_deleted: list[str] = field(default_factory=list)
    registry_gc: str = ""

    def to_json(self) -> dict[str, Any]:
        def item(d: Decision) -> dict[str, Any]:
            return {"image": d.image.name, "reason": d.reason, "bytes": d.image.size,
                    "digest": d.image.digest}  # fmt: skip

        return {
            "dry_run": self.dry_run,
            "remove": [item(d) for d in self.decisions if d.remove],
            "keep": [item(d) for d in self.decisions if not d.remove],
            "bytes": total_bytes(self.decisions),
            "registry_deleted": self.registry_deleted,
            "registry_gc": self.registry_gc,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class LinkInUse:
    """An active environment link, as retention sees it (the sharing layer makes these)."""

    id: str
    owner: str
    repo: str
    subdir: str = ""
    commit: str = ""
    build_id: str = ""


#: the active links at a time (the builds layer never imports sharing: this is passed in)
LinksInUse = Callable[[float], Awaitable[Sequence[LinkInUse]]]


async def no_links(now: float) -> Sequence[LinkInUse]:
    return ()


_ANY_REPO = RepoPolicy(allowed_http_hosts=frozenset({"*"}), allow_private_hosts=True)


class Collector:
    """Runs the retention policy for one build service (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        config: GCConfig,
        checker: Any = None,
        active_images: Callable[[], set[str]] = set,
        auth: AuthHeaders = no_auth,
        log: logging.Logger | None = None,
        links_in_use: LinksInUse | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.checker = checker
        self.active_images = active_images
        self.links_in_use: LinksInUse = links_in_use or no_links
        self.engine = Engine(config.docker_socket) if config.docker_socket else None
        self.registry = Registry(config.registry_url, auth) if config.registry_url else None
        self.log = log or logging.getLogger("fancy_env.gc")
        self.lock = asyncio.Lock()

    # ---- what exists ---------------------------------------------------------------------

    async def known_images(self) -> tuple[list[ImageInfo], set[str], set[str]]:
        """Every image under the prefix; the names in the engine; the names in the registry."""
        prefix = self.config.image_prefix
        async with self.store.session() as s:
            records = {r.name: r for r in await s.scalars(select(ImageRecord))}
        engine = await self.engine.images(prefix) if self.engine else {}
        registry: dict[str, tuple[str, int, str, str]] = {}
        if self.registry is not None:
            registry = await self._registry_images(prefix)
        names = {n for n in records if n.startswith(prefix)} | set(engine) | set(registry)
        last_used = await self._last_used(names)
        images = []
        for name in sorted(names):
            repo = split_image(name)[0]
            record, local = records.get(name), engine.get(name, {})
            digest, rsize, config_digest, path = registry.get(name, ("", 0, "", ""))
            created = record.created if record else float(local.get("created") or 0)
            if not created and self.registry is not None and path:
                created = await self.registry.created(path, config_digest)
            size = int(local.get("size") or rsize)
            images.append(ImageInfo(name, repo, created, last_used.get(name, 0.0), size, digest))
        return images, set(engine), set(registry)

    async def _registry_images(self, prefix: str) -> dict[str, tuple[str, int, str, str]]:
        assert self.registry is not None
        host, _, path_prefix = prefix.partition("/")
        found = {}
        try:
            for repository in await self.registry.repositories(path_prefix):
                for tag in await self.registry.tags(repository):
                    digest, size, config = await self.registry.manifest(repository, tag)
                    found[f"{host}/{repository}:{tag}"] = (digest, size, config, repository)
        except HTTPClientError as e:
            raise GCError(f"listing the registry {self.registry.url} failed: {e.code}") from e
        except OSError as e:
            raise GCError(f"registry {self.registry.url} unreachable: {e}") from e
        return found

    async def _last_used(self, names: set[str]) -> dict[str, float]:
        """The last time each image was asked for (a build or a cache hit of it)."""
        async with self.store.session() as s:
            q = select(Build.image, func.max(Build.created)).group_by(Build.image)
            return {image: float(t) for image, t in await s.execute(q) if image in names}

    # ---- what is in use ------------------------------------------------------------------

    async def in_use(self, images: list[ImageInfo]) -> dict[str, str]:
        why: dict[str, str] = {}
        for name in self.active_images():
            why.setdefault(name, "build in progress")
        now = time.time()
        async with self.store.session() as s:
            for build in await s.scalars(select(Build).where(Build.status.in_(ACTIVE_PHASES))):
                why.setdefault(build.image, "build in progress")
            if self.config.recent_seconds > 0:
                since = now - self.config.recent_seconds
                for build in await s.scalars(select(Build).where(Build.created >= since)):
                    why.setdefault(build.image, f"requested in the last "
                                   f"{self.config.recent_seconds:g} s")  # fmt: skip
        await self._links(why, images, now)
        await self._servers(why)
        await self._containers(why, images)
        return why

    async def _build_image(self, build_id: str) -> str:
        build = await self.store.get(build_id) if build_id else None
        return build.image if build is not None else ""

    async def _links(self, why: dict[str, str], images: list[ImageInfo], now: float) -> None:
        """Active environment links pin a build, a commit, or follow a branch (then the
        newest image of the repository stays). Asked of `links_in_use` (the sharing layer's
        link store, injected by the service assembly); none when sharing is off."""
        links = await self.links_in_use(now)
        newest: dict[str, ImageInfo] = {}
        for image in images:
            if image.repo not in newest or image.created > newest[image.repo].created:
                newest[image.repo] = image
        for link in links:
            if not link.repo:
                continue
            reason = f"environment link {link.id} of {link.owner}"
            why.setdefault(await self._build_image(link.build_id), reason)
            try:
                key = parse_repo(link.repo, subdir=link.subdir, policy=_ANY_REPO).key
            except RepoError:
                continue
            if link.commit:
                why.setdefault(image_name(self.config.image_prefix, key, link.commit), reason)
            else:  # follows a branch: its next launch may resolve to the newest image
                repo = split_image(image_name(self.config.image_prefix, key, "x"))[0]
                if repo in newest:
                    why.setdefault(newest[repo].name, reason + " (follows a branch)")
        why.pop("", None)

    async def _servers(self, why: dict[str, str]) -> None:
        """Running servers, from the hub API: the image of the build each one confirmed."""
        api, token = self.config.hub_api_url.rstrip("/"), self.config.hub_api_token
        if not api or not token:
            return
        headers = {"Authorization": f"token {token}",
                   "Accept": "application/jupyterhub-pagination+json"}  # fmt: skip
        offset = 0
        while True:
            url = f"{api}/users?state=active&limit=200&offset={offset}"
            try:
                r = await AsyncHTTPClient().fetch(url, headers=headers, request_timeout=30)
            except (HTTPClientError, OSError) as e:
                raise GCError(
                    f"cannot list running servers from the hub ({e}); the service needs the "
                    "scopes list:users and read:servers: nothing removed"
                ) from e
            body = json.loads(r.body)
            users = body["items"] if isinstance(body, dict) else body
            for user in users:
                if "servers" not in user:
                    raise GCError("the hub hides users' servers (the service needs read:servers)")
                for server_name, server in (user.get("servers") or {}).items():
                    if "user_options" not in server:
                        raise GCError("the hub hides servers' user_options (needs read:servers)")
                    options = server.get("user_options") or {}
                    image = await self._build_image(str(options.get("build_id") or ""))
                    if image:
                        why.setdefault(image, f"running server {user['name']}/{server_name}")
            following = body.get("_pagination", {}).get("next") if isinstance(body, dict) else None
            if not following:
                return
            offset = int(following.get("offset", offset + len(users)))

    async def _containers(self, why: dict[str, str], images: list[ImageInfo]) -> None:
        """Containers on the engine (any state): DockerSpawner's servers among them."""
        if self.engine is None:
            return
        tags_by_id: dict[str, list[str]] = {}
        for tag, info in (await self.engine.images(self.config.image_prefix)).items():
            tags_by_id.setdefault(info["id"], []).append(tag)
        for container in await self.engine.containers():
            names = ",".join(n.lstrip("/") for n in container.get("Names") or [])
            reason = f"container {names or container.get('Id', '')[:12]}"
            why.setdefault(str(container.get("Image", "")), reason)
            for tag in tags_by_id.get(str(container.get("ImageID", "")), []):
                why.setdefault(tag, reason)

    # ---- removing ------------------------------------------------------------------------

    async def run(self, dry_run: bool = False) -> GCReport:
        async with self.lock:
            report = GCReport(dry_run)
            images, in_engine, in_registry = await self.known_images()
            in_use = await self.in_use(images)
            report.decisions = decide(images, in_use, self.config.policy, time.time())
            if dry_run:
                return report
            failed = await self._remove_everywhere(report, in_engine, in_registry)
            for d in report.decisions:
                if d.remove and d.image.name not in failed:
                    await self._forget(d.image.name)
            if report.registry_deleted and self.config.registry_gc_config:
                report.registry_gc = await self.collect_registry_garbage()
            return report

    async def _remove_everywhere(
        self, report: GCReport, in_engine: set[str], in_registry: set[str]
    ) -> set[str]:
        failed: set[str] = set()
        for d in report.decisions:
            if d.remove and d.image.name in in_engine and self.engine is not None:
                error = await self.engine.remove(d.image.name)
                if error:
                    failed.add(d.image.name)
                    report.errors.append(f"{d.image.name}: {error}")
        if self.registry is not None:
            host = self.config.image_prefix.partition("/")[0]
            wanted = [d for d in report.decisions if d.image.name in in_registry]
            for repo, digest in registry_digests_to_delete(wanted):
                path = repo[len(host) + 1 :]
                error = await self.registry.delete(path, digest)
                if error:
                    failed.update(d.image.name for d in wanted if d.image.digest == digest)
                    report.errors.append(error)
                else:
                    report.registry_deleted.append(f"{repo}@{digest}")
        return failed

    async def _forget(self, name: str) -> None:
        """No record, memory or build may vouch for a removed image any more."""
        async with self.store.session.begin() as s:
            await s.execute(delete(ImageRecord).where(ImageRecord.name == name))
            await s.execute(
                update(Build)
                .where(Build.image == name, Build.status == "built")
                .values(status=REMOVED, reason="image removed by the retention policy")
            )
        forget = getattr(self.checker, "forget", None)
        if callable(forget):
            forget(name)

    async def collect_registry_garbage(self) -> str:
        """`docker-registry garbage-collect --delete-untagged CONFIG`; its last line."""
        if self.active_images():
            return "skipped: a build is in progress (a push could lose its blobs)"
        command = [*self.config.registry_gc_command, "--delete-untagged",
                   self.config.registry_gc_config]  # fmt: skip
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
        except OSError as e:
            return f"failed to run {command[0]}: {e}"
        out, _ = await proc.communicate()
        lines = out.decode("utf-8", "replace").strip().splitlines()
        if proc.returncode:
            return f"exit {proc.returncode}: {lines[-1] if lines else ''}"
        blobs = sum("blob eligible for deletion" in line for line in lines)
        manifests = sum("manifest eligible for deletion" in line for line in lines)
        return f"done: {blobs} blob(s) and {manifests} manifest(s) deleted"
