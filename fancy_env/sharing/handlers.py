"""Tornado handlers for environment links (routes in `routes.py`, under the service prefix;
each handler gets the web context and the `SharingContext` through `initialize()`):

- `api/links`            GET (mine; `?all=1` for admins), POST (create)
- `api/links/<id>`       GET, PATCH (`expires_in`, `revoked`), DELETE (revoke)
- `l/<code>`             GET: the link page (login required; survives the hub's login redirect)
- `l/<code>/launch`      POST: launch (`action` = launch | replace | named)
- `links`                GET: "My links" page
- `share`, `share/<server>`  the "Share this server" page (see shares.py)
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import FancyError
from . import links as L
from .base import APIHandler, SharingHandler
from .credpages import private_notice
from .launch import LaunchFlow
from .permissions import check_spec

CODE_RE = r"([A-Za-z0-9_-]{1,200})"
ID_RE = r"([0-9a-f]{16})"


class LinkAPIBase(APIHandler):
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
            raise FancyError(404, f"no link {link_id} of yours")
        return link


class LinksAPIHandler(LinkAPIBase):
    async def get(self) -> None:
        owner: str | None = self.username
        if self.get_argument("all", "") in ("1", "true"):
            if not self.is_admin:
                raise FancyError(403, "listing everyone's links needs admin", "all")
            owner = None
        limit = self.int_argument("limit", 1, 500, 500)
        offset = self.int_argument("offset", 0, 10_000, 0)
        links = await self.ctx.store.list(owner=owner, limit=limit, offset=offset)
        self.write({"links": [self.link_model(link) for link in links]})

    async def post(self) -> None:
        link, code = await self.create_link(self.body())
        self.set_status(201)
        self.write(self.link_model(link, code=code))


class LinkAPIHandler(LinkAPIBase):
    async def get(self, link_id: str) -> None:
        self.write(self.link_model(await self.owned_link(link_id)))

    async def patch(self, link_id: str) -> None:
        link = await self.owned_link(link_id)
        changes = L.parse_link_update(self.body(), time.time(), self.ctx.config.policy())
        if link.revoked_at is not None:
            changes.pop("revoked_at", None)  # keep the first revocation time
        updated = await self.ctx.store.update(link.id, **changes) or link
        self.write(self.link_model(updated))

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
        self.navigation()  # a read-only page view needs no XSRF check (see navigation)
        await super().prepare()

    def check_permission(self, link: L.Link) -> None:
        refusal = check_spec(self.ctx.profiles, self.current_user, link.spec)
        if refusal:
            self.fail_page(
                403,
                "You cannot launch this environment",
                f"{link.owner} shared an environment that your account may not use: {refusal}",
            )
        if link.spec.repo:
            self.may_build_or_fail(f"{link.owner} shared an environment built from a repository")


class LinkPageHandler(LinkPageBase):
    async def get(self, code: str) -> None:
        link = await self.find_link(code)
        self.check_permission(link)
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
    async def post(self, code: str) -> None:
        link = await self.find_link(code)
        self.check_permission(link)
        action = self.get_body_argument("action", "launch")
        if action not in ("launch", "replace", "named"):
            self.fail_page(400, "Unknown choice", "action must be launch, replace or named")
        flow = LaunchFlow(self, link)
        await flow.run(action, self.get_body_argument("build_id", ""), code)
