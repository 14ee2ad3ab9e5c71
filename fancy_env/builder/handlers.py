"""HTTP API of the build service (design §3.3; docs/builder.md is the reference).

Authentication, in order: a form ticket (`X-Fancy-Env-Ticket`), the service's own API token
(the hub's spawners confirming builds), then JupyterHub (API tokens for scripts, the HubOAuth
cookie for browsers). Errors are JSON `{"status", "message", "field"?}`, never a traceback.
Request bodies and integer parameters go through `fancy_env.webinput` (size, JSON depth,
ranges); event streams are counted per user and replay stored logs in pages.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.httputil import url_concat
from tornado.iostream import StreamClosedError
from tornado.web import HTTPError, RequestHandler

from .._version import __version__
from ..tickets import HEADER, TicketError, verify
from ..webheaders import set_security_headers
from ..webinput import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JSON_DEPTH,
    InputError,
    int_param,
    parse_json_body,
)
from . import metrics
from .service import BuildService, ServiceError

#: a replayed page is written in pieces of at most this many bytes, each awaited
REPLAY_CHUNK_BYTES = 32 * 1024


class LoginRedirect(Exception):
    """An unauthenticated browser: send it through the hub's OAuth."""


@dataclass(frozen=True)
class Identity:
    name: str
    admin: bool
    can_build: bool
    via_cookie: bool = False


class BaseHandler(RequestHandler):
    identity: Identity

    @property
    def service(self) -> BuildService:
        service: BuildService = self.settings["build_service"]
        return service

    @property
    def prefix(self) -> str:
        return str(self.settings["service_prefix"])

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        set_security_headers(self)

    def check_xsrf_cookie(self) -> None:
        """Cookie-authenticated changes are checked in `prepare` (HubOAuth's XSRF)."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body: dict[str, Any] = {"status": status_code}
        if isinstance(exc, ServiceError):
            body["message"] = exc.reason
            if exc.field:
                body["field"] = exc.field
            for name, value in exc.headers.items():
                self.set_header(name, value)  # e.g. Retry-After (send_error cleared headers)
        elif isinstance(exc, HTTPError) and exc.log_message:
            body["message"] = exc.log_message
        else:
            body["message"] = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def fail(self, status: int, message: str, field: str = "") -> None:
        raise ServiceError(status, message, field)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ServiceError):
            self.settings["log"].info(
                "%s %s -> %s: %s",
                self.request.method,
                self.request.path,
                value.status,
                value.reason,
            )
            return
        super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ServiceError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    async def authenticate(self) -> Identity:
        settings = self.settings
        ticket = self.request.headers.get(HEADER)
        if ticket:
            try:
                name = verify(settings["ticket_secret"], ticket)
            except TicketError as e:
                raise ServiceError(403, f"form ticket refused: {e}") from None
            return Identity(name, name in settings["admin_users"], True)
        auth = self.request.headers.get("Authorization", "")
        own = settings["service_token"]
        if own and auth.lower().startswith(("token ", "bearer ")):
            if hmac.compare_digest(auth.split(" ", 1)[1].strip(), own):
                return Identity(f"service:{settings['service_name']}", True, True)
        hub_auth = settings.get("hub_auth")
        if hub_auth is None:
            raise ServiceError(403, "authentication required (a form ticket)")
        try:
            model = await hub_auth.get_user(self, sync=False)
        except HTTPError as e:
            if e.status_code in (401, 403):
                raise
            raise ServiceError(503, "JupyterHub could not be asked to check the token") from None
        if not model:
            if self.request.method == "GET" and "text/html" in self.request.headers.get(
                "Accept", ""
            ):
                raise LoginRedirect()
            raise ServiceError(403, "authentication required (a JupyterHub token or login)")
        return self._identity_from_model(model)

    def _identity_from_model(self, model: dict[str, Any]) -> Identity:
        settings = self.settings
        scopes = set(model.get("scopes", []))
        name = str(model["name"])
        if model.get("kind") == "service":
            admin = name == settings["service_name"]
            name = f"service:{name}"
        else:
            admin = bool(model.get("admin")) or name in settings["admin_users"]
        admin = admin or bool(scopes & {settings["admin_scope"], "admin:users"})
        build_scope = settings["build_scope"]
        can_build = admin or not build_scope or build_scope in scopes
        access = settings["access_scopes"]
        if not (can_build or admin or scopes & access):
            raise ServiceError(403, f"the scope {build_scope} is required to use this service")
        via_cookie = not getattr(self, "_token_authenticated", False)
        return Identity(name, admin, can_build, via_cookie)

    async def prepare(self) -> None:
        if self.request.method == "OPTIONS":
            return
        try:
            self.identity = await self.authenticate()
        except LoginRedirect:
            self.redirect(self._login_url())
            return
        if self.identity.via_cookie and self.request.method in ("POST", "DELETE"):
            hub_auth = self.settings["hub_auth"]
            hub_auth.check_xsrf_cookie(self)

    def _login_url(self) -> str:
        """Start HubOAuth for a browser (it comes back through `oauth_callback`)."""
        hub_auth = self.settings["hub_auth"]
        params: dict[str, str] = {}
        verifier = None
        if getattr(hub_auth, "pkce_enabled", False):
            verifier, challenge, method = hub_auth.generate_pkce_code_challenge()
            params.update(code_challenge=challenge, code_challenge_method=method)
        params["state"] = hub_auth.set_state_cookie(
            self, next_url=self.request.uri, code_verifier=verifier
        )
        return str(url_concat(hub_auth.login_url, params))

    def json_body(self) -> Any:
        """The request body as JSON, within `max_body_bytes` and `max_json_depth`."""
        try:
            return parse_json_body(
                self.request.body,
                self.settings.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
                self.settings.get("max_json_depth", DEFAULT_MAX_JSON_DEPTH),
            )
        except InputError as e:
            raise ServiceError(e.status, e.message, e.field) from None

    def int_argument(self, name: str, low: int, high: int, default: int) -> int:
        try:
            return int_param(self.get_argument(name, None), name, low, high, default)
        except InputError as e:
            raise ServiceError(e.status, f"{name} {e.message}", e.field) from None

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

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
            self.fail(403, f"building needs the scope {self.settings['build_scope']}")
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
            retry = max(1, int(self.settings["keepalive_interval"]))
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
        keepalive = float(self.settings["keepalive_interval"])
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
        page = int(self.settings.get("replay_page_lines", 500))
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
        batch = float(self.settings["event_batch_interval"])
        page = int(self.settings.get("replay_page_lines", 500))
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
    async def prepare(self) -> None:
        if self.settings["metrics_require_auth"]:
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


def oauth_callback_handler() -> type:
    """HubOAuth's callback handler, using the application's own HubOAuth instance."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    class OAuthCallbackHandler(HubOAuthCallbackHandler):
        def initialize(self) -> None:
            self.hub_auth = self.settings["hub_auth"]

    return OAuthCallbackHandler
