"""Tornado handlers for environment links, mounted under the build service's prefix.

    handlers = sharing_handlers("/services/fancy-env/", settings)

`settings` must hold a `SharingContext` under `SETTINGS_KEY` and a HubOAuth instance under
`hub_auth` (what JupyterHub's service helpers use). Routes (relative to the prefix):

- `api/links`            GET (mine; `?all=1` for admins), POST (create)
- `api/links/<id>`       GET, PATCH (`expires_in`, `revoked`), DELETE (revoke)
- `l/<code>`             GET: the link page (login required; survives the hub's login redirect)
- `l/<code>/launch`      POST: launch (`action` = launch | replace | named)
- `links`                GET: "My links" page
- `share`, `share/<server>`  the "Share this server" page (see shares.py)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from tornado import web

from .. import tickets, webinput
from . import links as L
from .config import SETTINGS_KEY, SharingContext
from .launch import LaunchFlow
from .permissions import check_spec, may_build
from .render import SharingPage

CODE_RE = r"([A-Za-z0-9_-]{1,200})"
ID_RE = r"([0-9a-f]{16})"


class SharingHandler(SharingPage):
    """Base: resolves the user (HubOAuth cookie, API token, or the form's ticket)."""

    via_ticket = False
    accepts_ticket = False  # only the JSON API takes the spawn form's ticket

    @property
    def ctx(self) -> SharingContext:
        ctx: SharingContext = self.settings[SETTINGS_KEY]
        return ctx

    async def prepare(self) -> None:
        ticket = self.request.headers.get(tickets.HEADER)
        secret = self.settings.get("ticket_secret")
        if ticket and secret and self.accepts_ticket:
            try:
                claims = tickets.verify_claims(secret, ticket)
                if tickets.BUILD_SCOPE not in claims.scopes:
                    raise tickets.TicketError(f"ticket lacks the scope {tickets.BUILD_SCOPE}")
            except tickets.TicketError as err:
                raise web.HTTPError(403, f"form ticket refused: {err}") from None
            self.via_ticket = True
            # the rights the spawner put in the ticket: the same checks as an API token's
            self._hub_auth_user_cache = {
                "name": claims.user,
                "kind": "user",
                "groups": list(claims.groups),
                "scopes": sorted(claims.scopes),
            }
            return
        model = await self.hub_auth.get_user(self, sync=False)
        self._hub_auth_user_cache = self.check_hub_user(model) if model else None

    def check_xsrf_cookie(self) -> None:
        headers = self.request.headers
        if headers.get("Authorization") or headers.get(tickets.HEADER):
            return  # not cookie-authenticated: no cross-site forgery possible
        super().check_xsrf_cookie()

    @property
    def username(self) -> str:
        return str(self.current_user["name"])

    @property
    def is_admin(self) -> bool:
        return bool(self.current_user and self.current_user.get("admin"))

    def user_token(self) -> str:
        return str(self.hub_auth.get_token(self) or "")

    async def create_link(self, body: Any) -> tuple[L.Link, str]:
        """Create a link for the current user from a request body; returns (link, code)."""
        ctx, now = self.ctx, time.time()
        policy = ctx.config.policy()
        if not ctx.config.links_enabled:
            raise web.HTTPError(403, "creating environment links is turned off on this hub")
        body = await self.fill_from_build(body)
        try:
            spec = L.parse_link_request(body, policy)
            expires_at = L.parse_expiry(body.get("expires_in"), now, policy)
        except L.LinkError as err:
            raise web.HTTPError(err.status, err.message if not err.field else str(err)) from None
        spec = self.normalise_repo(spec)
        refusal = check_spec(ctx.profiles, self.current_user, spec)
        if refusal:  # whatever the credential: token, cookie or form ticket
            raise web.HTTPError(403, f"you may not share this environment: {refusal}")
        recent = await ctx.store.created_since(self.username, now - policy.rate_window)
        decision = L.check_rate(recent, now, policy.rate_limit, policy.rate_window)
        if not decision.allowed:
            too_many = web.HTTPError(
                429,
                f"too many links: at most {policy.rate_limit} per {policy.rate_window} s; "
                f"try again in {decision.retry_after} s",
            )
            too_many.headers = {"Retry-After": str(decision.retry_after)}  # type: ignore[attr-defined]
            raise too_many
        code = L.new_code()
        link = L.Link(L.new_link_id(), L.hash_code(code), self.username, spec, now, expires_at)
        await ctx.store.add(link)
        return link, code

    def normalise_repo(self, spec: L.LinkSpec) -> L.LinkSpec:
        """The repository as the build service names it (shorthands expanded), refused with
        the build service's reason when it would never build it."""
        service = self.settings.get("build_service")
        if service is None or not spec.repo:
            return spec
        from ..repos import RepoError, parse_repo

        try:
            parsed = parse_repo(spec.repo, spec.ref, spec.subdir, service.policy)
        except RepoError as err:
            raise web.HTTPError(400, f"repo: {err.reason}") from None
        return dataclasses.replace(spec, repo=parsed.url, subdir=parsed.subdir)

    async def fill_from_build(self, body: Any) -> Any:
        """`{profile, options, build_id}` is enough: repository, ref and the resolved commit
        come from the build record (which the creator must have requested)."""
        service = self.settings.get("build_service")
        if not isinstance(body, dict) or not body.get("build_id") or body.get("repo"):
            return body
        if service is None:
            return body  # parse_link_request then asks for the repository
        build = await service.store.get(str(body["build_id"]))
        users = await service.store.users(build.id) if build else []
        if build is None or (build.user != self.username and self.username not in users):
            raise web.HTTPError(404, f"build_id: no build {body['build_id']} of yours")
        ref = body.get("ref") or build.ref or ("HEAD" if body.get("follow_branch") else "")
        return {
            **body,
            "repo": build.repo,
            "ref": ref,
            "commit": build.commit,
            "subdir": build.subdir,
        }

    def link_url(self, code: str) -> str:
        return f"{self.ctx.prefix}l/{code}"


class APIHandler(SharingHandler):
    json_errors = True
    accepts_ticket = True

    def get_login_url(self) -> str:
        raise web.HTTPError(403, "log in to the hub, or send an API token")

    def body(self) -> Any:
        """The JSON body, within the build service's `max_body_bytes` and `max_json_depth`."""
        try:
            return webinput.parse_json_body(
                self.request.body,
                self.settings.get("max_body_bytes", webinput.DEFAULT_MAX_BODY_BYTES),
                self.settings.get("max_json_depth", webinput.DEFAULT_MAX_JSON_DEPTH),
            )
        except webinput.InputError as err:
            raise web.HTTPError(err.status, str(err)) from None

    def int_argument(self, name: str, low: int, high: int, default: int) -> int:
        try:
            return webinput.int_param(self.get_argument(name, None), name, low, high, default)
        except webinput.InputError as err:
            raise web.HTTPError(err.status, str(err)) from None

    def link_model(self, link: L.Link, code: str | None = None) -> dict[str, Any]:
        now = time.time()
        spec = link.spec
        model: dict[str, Any] = {
            "id": link.id,
            "owner": link.owner,
            "created": link.created,
            "expires_at": link.expires_at,
            "revoked_at": link.revoked_at,
            "state": L.link_state(link, now),
            "launches": link.launches,
            "profile": spec.profile,
            "options": dict(spec.options),
            "repo": spec.repo,
            "ref": spec.ref,
            "commit": spec.commit,
            "subdir": spec.subdir,
            "follow_branch": spec.follow_branch,
            "autostart": spec.autostart,
            "note": spec.note,
            "urlpath": spec.urlpath,
        }
        if code is not None:  # the code is shown once, at creation; only its hash is kept
            model["code"] = code
            model["url"] = self.link_url(code)
            model["full_url"] = f"{self.request.protocol}://{self.request.host}{model['url']}"
        return model

    async def owned_link(self, link_id: str) -> L.Link:
        link = await self.ctx.store.by_id(link_id)
        if link is None or (link.owner != self.username and not self.is_admin):
            raise web.HTTPError(404, f"no link {link_id} of yours")
        return link

    def refuse(self, err: L.LinkError) -> None:
        raise web.HTTPError(err.status, err.message if not err.field else str(err))


class LinksAPIHandler(APIHandler):
    @web.authenticated
    async def get(self) -> None:
        owner: str | None = self.username
        if self.get_argument("all", "") in ("1", "true"):
            if not self.is_admin:
                raise web.HTTPError(403, "listing everyone's links needs admin")
            owner = None
        limit = self.int_argument("limit", 1, 500, 500)
        offset = self.int_argument("offset", 0, 10_000, 0)
        links = await self.ctx.store.list(owner=owner, limit=limit, offset=offset)
        self.write({"links": [self.link_model(link) for link in links]})

    @web.authenticated
    async def post(self) -> None:
        link, code = await self.create_link(self.body())
        self.set_status(201)
        self.write(self.link_model(link, code=code))


class LinkAPIHandler(APIHandler):
    @web.authenticated
    async def get(self, link_id: str) -> None:
        self.write(self.link_model(await self.owned_link(link_id)))

    @web.authenticated
    async def patch(self, link_id: str) -> None:
        link = await self.owned_link(link_id)
        try:
            changes = L.parse_link_update(self.body(), time.time(), self.ctx.config.policy())
        except L.LinkError as err:
            self.refuse(err)
            return
        if link.revoked_at is not None:
            changes.pop("revoked_at", None)  # keep the first revocation time
        updated = await self.ctx.store.update(link.id, **changes) or link
        self.write(self.link_model(updated))

    @web.authenticated
    async def delete(self, link_id: str) -> None:
        link = await self.owned_link(link_id)
        if link.revoked_at is None:
            await self.ctx.store.update(link.id, revoked_at=time.time())
        self.set_status(204)
        self.finish()


class LinkPageBase(SharingHandler):
    async def find_link(self, code: str) -> L.Link:
        """The active link for `code`, or an error page: 404 unknown/revoked, 410 expired."""
        link = None
        if L.is_well_formed_code(code):
            link = await self.ctx.store.by_code_hash(L.hash_code(code))
        state = L.link_state(link, time.time()) if link else "revoked"
        if link is None or state == "revoked":
            self.fail_page(
                404,
                "Link not found",
                "This environment link does not exist or was revoked by the person who shared "
                "it. Ask them for a new link.",
            )
        assert link is not None
        if state == "expired":
            when = self.format_time(link.expires_at)
            self.fail_page(
                410,
                "Link expired",
                f"This environment link expired on {when}. Ask {link.owner} for a new link.",
            )
        return link

    async def prepare(self) -> None:
        # A plain GET without Sec-Fetch-Mode (a browser on a non-https origin, curl) makes
        # JupyterHub's cookie auth log "Skipping XSRF check for insecure request GET <path>",
        # path and code included. A read-only page view needs no XSRF check either way
        # (JupyterHub treats the missing header as "navigate"); saying so skips the warning.
        if self.request.method in ("GET", "HEAD"):
            self.request.headers.setdefault("Sec-Fetch-Mode", "navigate")
        await super().prepare()

    def check_permission(self, link: L.Link) -> None:
        refusal = check_spec(self.ctx.profiles, self.current_user, link.spec)
        if refusal:
            self.fail_page(
                403,
                "You cannot launch this environment",
                f"{link.owner} shared an environment that your account may not use: {refusal}",
            )
        settings = self.settings
        if link.spec.repo and settings.get("build_service") is not None:
            scope = str(settings.get("build_scope", tickets.BUILD_SCOPE))
            admin_scope = str(settings.get("admin_scope", ""))
            admins = frozenset(settings.get("admin_users", ()))
            if not may_build(self.current_user, scope, admin_scope, admins):
                self.fail_page(
                    403,
                    "You cannot launch this environment",
                    f"{link.owner} shared an environment built from a repository; building it "
                    f"needs the scope {scope}, which your account does not have. Ask your hub "
                    "admin for it.",
                )


class LinkPageHandler(LinkPageBase):
    @web.authenticated
    async def get(self, code: str) -> None:
        link = await self.find_link(code)
        self.check_permission(link)
        from .credpages import private_notice  # (imports handlers: not at module level)

        flow = LaunchFlow(self, link)
        situation = await flow.situation()
        actions = L.offered_actions(situation)
        autostart = (
            link.spec.autostart and self.ctx.config.allow_one_click_launch and actions == ["launch"]
        )
        self.render_page(
            "link.html",
            title="Launch a shared environment",
            link=link,
            spec=link.spec,
            profile_name=flow.profile_display(),
            option_rows=flow.option_rows(),
            actions=actions,
            autostart=autostart,
            launch_url=self.link_url(code) + "/launch",
            server_url=flow.server_url(""),
            private_notice=await private_notice(self, link.spec.repo),
        )


class LinkLaunchHandler(LinkPageBase):
    @web.authenticated
    async def post(self, code: str) -> None:
        link = await self.find_link(code)
        self.check_permission(link)
        action = self.get_body_argument("action", "launch")
        if action not in ("launch", "replace", "named"):
            self.fail_page(400, "Unknown choice", "action must be launch, replace or named")
        flow = LaunchFlow(self, link)
        await flow.run(action, self.get_body_argument("build_id", ""), code)


def sharing_handlers(prefix: str, settings: dict[str, Any]) -> list[tuple[str, type, dict]]:
    """The sharing routes under the service prefix (e.g. `/services/fancy-env/`).

    `settings` is the tornado Application settings dict the routes will run with; it must
    hold a `SharingContext` under `SETTINGS_KEY`. Returned as (pattern, handler, kwargs).
    """
    from .pages import MyLinksPageHandler
    from .shares import ShareServerHandler

    if SETTINGS_KEY not in settings:
        raise ValueError(f"settings[{SETTINGS_KEY!r}] must hold a SharingContext")
    p = prefix if prefix.endswith("/") else prefix + "/"
    return [
        (rf"{p}api/links", LinksAPIHandler, {}),
        (rf"{p}api/links/{ID_RE}", LinkAPIHandler, {}),
        (rf"{p}l/{CODE_RE}", LinkPageHandler, {}),
        (rf"{p}l/{CODE_RE}/launch", LinkLaunchHandler, {}),
        (rf"{p}links", MyLinksPageHandler, {}),
        (rf"{p}share", ShareServerHandler, {}),
        (rf"{p}share/([^/]+)", ShareServerHandler, {}),
    ]
