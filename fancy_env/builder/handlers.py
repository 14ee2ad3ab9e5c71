"""HTTP API of the build service (design §3.3; docs/builder.md is the reference).

Identity, scopes, XSRF and errors belong to the service's one base handler
(`fancy_env.web.handler.ServiceHandler`): a form ticket, the service's own token, a JupyterHub
token or the HubOAuth cookie; errors are JSON `{"status", "message", "field"?}`. Each handler
receives the web context, the build service and the stream settings through `initialize()`
(`build_routes`). Event streams are counted per user and replay stored logs in pages.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.iostream import StreamClosedError

from .._version import __version__
from ..web.context import WebContext
from ..web.handler import Identity, ServiceHandler
from . import metrics
from .service import BuildService, ServiceError

__all__ = ["BaseHandler", "Identity", "StreamSettings"]

#: a replayed page is written in pieces of at most this many bytes, each awaited
REPLAY_CHUNK_BYTES = 32 * 1024


@dataclass(frozen=True)
class StreamSettings:
    """How event streams are paced (BuilderApp's keepalive, batch and replay traits)."""

    keepalive_interval: float = 15
    event_batch_interval: float = 0.05
    replay_page_lines: int = 500


class BaseHandler(ServiceHandler):
    """A build API route: the web context, the build service, the stream settings."""

    identity: Identity

    def initialize(  # type: ignore[override]
        self,
        web: WebContext,
        service: BuildService,
        streams: StreamSettings = StreamSettings(),
        **parts: Any,
    ) -> None:
        super().initialize(web)
        self.service = service
        self.streams = streams
        self.parts = parts  # route-specific collaborators (the collector, metrics options)

    async def get_build(self, build_id: str) -> Any:
        build = await self.service.store.get(build_id)
        if build is None:
            raise ServiceError(404, f"no build with id {build_id!r}", "id")
        return build

    async def get_visible_build(self, build_id: str) -> Any:
        """The build, if this identity asked for it (or is an admin); else 403."""
        build = await self.get_build(build_id)
        if self.identity.admin or build.user == self.identity.name:
            return build
        if self.identity.name not in await self.service.store.users(build_id):
            raise ServiceError(403, f"build {build_id} belongs to another user", "id")
        return build


class BuildsHandler(BaseHandler):
    async def post(self) -> None:
        if not self.identity.can_build:
            self.require_build_scope()
        body = self.json_body()
        if not isinstance(body, dict):
            self.fail(400, "the request body must be a JSON object: {repo, ref?, subdir?}", "body")
        repo, ref, subdir = body.get("repo", ""), body.get("ref") or "", body.get("subdir") or ""
        rebuild = body.get("rebuild", False)
        if not isinstance(rebuild, bool):
            self.fail(400, "rebuild must be true or false", "rebuild")
        build = await self.service.request(
            self.identity.name, repo, ref, subdir, rebuild=rebuild, admin=self.identity.admin
        )
        status = 200 if build.status == "built" else 202
        self.write_json(build.to_json(self.prefix), status)

    async def get(self) -> None:
        repo = self.get_argument("repo", None)
        if repo:
            repo = self.service.normalise_repo(repo)
        user: str | None = self.get_argument("user", None)
        mine = self.get_argument("mine", "") in ("1", "true", "yes")
        if mine or not self.identity.admin:
            if user not in (None, self.identity.name) and not self.identity.admin:
                self.fail(403, "listing another user's builds needs admin", "user")
            user = self.identity.name if (mine or user is None) else user
        limit = self.int_argument("limit", 1, 1000, 100)
        offset = self.int_argument("offset", 0, 1_000_000, 0)
        builds = await self.service.store.history(user=user, repo=repo, limit=limit, offset=offset)
        self.write_json({"builds": [b.to_json(self.prefix) for b in builds]})


class BuildHandler(BaseHandler):
    async def get(self, build_id: str) -> None:
        build = await self.get_visible_build(build_id)
        data = build.to_json(self.prefix)
        active = self.service.active.get(build_id)
        data["queue_position"] = self.service.queue.position(active) if active else 0
        data["users"] = await self.service.store.users(build_id)
        data["launch_image"] = self.service.launch_image(build) if build.status == "built" else ""
        self.write_json(data)

    async def delete(self, build_id: str) -> None:
        build = await self.get_build(build_id)
        if not (self.identity.admin or build.user == self.identity.name):
            self.fail(403, "only the build's owner or an admin may cancel it")
        active = self.service.active.get(build_id)
        if active is not None:
            await self.service.cancel(active, self.identity.name)
        self.write_json((await self.get_build(build_id)).to_json(self.prefix), 202)


class EventsHandler(BaseHandler):
    _slot_user: str | None = None

    def _last_event_id(self) -> int:
        raw = self.request.headers.get("Last-Event-ID") or self.get_argument("last_event_id", "0")
        try:
            value = int(raw or 0)
        except ValueError:
            raise ServiceError(400, "Last-Event-ID must be an event id", "Last-Event-ID") from None
        return max(value, 0)

    def _take_slot(self) -> None:
        """Count this stream against its user's `max_streams_per_user` (429 beyond it)."""
        slots = self.service.streams
        if not slots.acquire(self.identity.name):
            metrics.REFUSED.labels("streams").inc()
            retry = max(1, int(self.streams.keepalive_interval))
            raise ServiceError(
                429,
                f"you already have {slots.max_per_user} event streams open, the most allowed "
                f"(max_streams_per_user = {slots.max_per_user}); close one and try again",
                headers={"Retry-After": str(retry)},
            )
        self._slot_user = self.identity.name

    def _release_slot(self) -> None:
        if self._slot_user is not None:
            self.service.streams.release(self._slot_user)
            self._slot_user = None

    def on_connection_close(self) -> None:
        self._release_slot()  # at once, not at the next write that would notice

    def on_finish(self) -> None:
        self._release_slot()

    async def get(self, build_id: str) -> None:
        await self.get_visible_build(build_id)
        last = self._last_event_id()
        self._take_slot()
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("X-Accel-Buffering", "no")
        keepalive = float(self.streams.keepalive_interval)
        try:
            self.write(f"retry: {int(keepalive * 1000)}\n\n")
            await self.flush()
            await self._stream(build_id, last, keepalive)
        except StreamClosedError:
            return  # the client went away; the build goes on
        finally:
            self._release_slot()

    async def _write_page(self, chunk: str | bytes) -> None:
        """Write in pieces of at most REPLAY_CHUNK_BYTES, waiting after each until the
        client took it (backpressure; no write callback holds the loop for long)."""
        data = chunk.encode() if isinstance(chunk, str) else chunk
        view = memoryview(data)
        for start in range(0, len(data), REPLAY_CHUNK_BYTES):
            self.write(bytes(view[start : start + REPLAY_CHUNK_BYTES]))
            await self.flush()
        await asyncio.sleep(0)

    async def _replay(self, build_id: str, last: int, upto: int | None) -> int:
        """Stored events after `last` (up to `upto`), page by page (bounded memory). A page
        is read and serialised once for every watcher (`ReplayCache.page`); a few replays
        read a page at a time (`replay_turns`), the others wait their turn, so any number
        of replays cannot hold up other requests; each waits for its client."""
        page = max(1, self.streams.replay_page_lines)
        service = self.service
        while True:
            async with service.replay_turns:
                chunk, last, count = await service.replay_cache.page(
                    build_id, last, page, upto, service.store.lines
                )
            if chunk:
                await self._write_page(chunk)
            if count < page:
                return last

    async def _stream(self, build_id: str, last: int, keepalive: float) -> None:
        service = self.service
        active = service.active.get(build_id)
        if active is None or last < active.base_seq:
            last = await self._replay(build_id, last, active.base_seq if active else None)
            if active is None:  # it may have ended while we replayed; then all is stored
                self.finish()
                return
        batch = float(self.streams.event_batch_interval)
        page = max(1, self.streams.replay_page_lines)
        while True:
            chunk, last = active.sse_after(last, page)
            if chunk:
                await self._write_page(chunk)
                if last < active.published:
                    continue  # more is ready: send it before waiting
            if active.closed and active.published == last:
                break
            if not await active.wait(keepalive):
                self.write(": keepalive\n\n")
                await self.flush()
            elif batch > 0 and not active.done:
                await asyncio.sleep(batch)  # gather the lines that follow into one write
        self.finish()


class HealthHandler(BaseHandler):
    login_required = False

    async def prepare(self) -> None:
        pass

    def get(self) -> None:
        service = self.service
        self.write_json(
            {
                "status": "ok",
                "version": __version__,
                "executor": service.executor.name,
                "queued": len(service.queue),
                "running": service.queue.running_total,
            }
        )


class MetricsHandler(BaseHandler):
    login_required = False

    async def prepare(self) -> None:
        if self.parts.get("require_auth"):
            self.login_required = True
            await super().prepare()

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())


class RootHandler(HealthHandler):
    def get(self) -> None:
        self.write_json({"service": "fancy-env", "version": __version__, "api": "api/builds"})


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        raise ServiceError(404, f"no such path: {self.request.path}")
