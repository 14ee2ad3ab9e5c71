"""Launching a link: reuse (or build) the image through the build service, then start the
recipient's server through the hub REST API with the recipient's own OAuth token, and send the
browser to the hub's spawn-pending page (which forwards to the server once it is ready)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import FancyError
from . import links as L
from .hubapi import APIResult
from .permissions import is_scope_refusal

if TYPE_CHECKING:
    from .base import SharingHandler

BUILT = "built"
FAILED = {"failed", "cancelled"}


class LaunchFlow:
    def __init__(self, handler: SharingHandler, link: L.Link) -> None:
        self.handler = handler
        self.link = link
        self.ctx = handler.ctx
        self.user = handler.username
        self.token = handler.user_token()

    # ------------------------------------------------------------------ what the page shows

    def _profile(self) -> Any:
        for profile in self.ctx.profiles or ():
            if profile.slug == self.link.spec.profile:
                return profile
        return None

    def profile_display(self) -> str:
        profile = self._profile()
        return f"{profile.display_name} ({profile.slug})" if profile else self.link.spec.profile

    def option_rows(self) -> list[tuple[str, str]]:
        """(option label, choice label) pairs, with display names when the profiles are known."""
        profile = self._profile()
        rows = []
        for key, value in sorted(self.link.spec.options.items()):
            label, shown = key, value
            option = profile.option(key.split("--")[0]) if profile else None
            if option is not None:
                label = option.display_name
                choice = option.choice(value)
                if key.endswith("--unlisted-choice"):
                    label = f"{option.display_name} ({option.unlisted.display_name})"
                elif choice is not None:
                    shown = f"{choice.display_name} ({value})"
            rows.append((label, shown))
        if self.link.spec.urlpath:
            rows.append(("Opens after launch", self.link.spec.urlpath))
        return rows

    def server_url(self, server: str) -> str:
        """The recipient's server; with the link's urlpath (already normalised and
        percent-encoded) when the server is running and only needs opening."""
        base = self.ctx.hub_prefix[: -len("hub/")] if self.ctx.hub_prefix.endswith("hub/") else "/"
        path = f"{base}user/{quote(self.user, safe='')}/"
        return path + (f"{quote(server, safe='')}/" if server else "") + self.link.spec.urlpath

    async def situation(self) -> L.ServerSituation:
        result = await self.ctx.hub.get_user(self.token, self.user)
        if not result.ok or not isinstance(result.body, dict):
            self.handler.log.warning("cannot read %s's servers: %s", self.user, result.message)
            return L.ServerSituation(named_allowed=self.ctx.config.allow_named_servers)
        return L.situation_from_user_model(
            result.body,
            named_allowed=self.ctx.config.allow_named_servers,
            named_limit=self.ctx.config.named_server_limit_per_user,
        )

    # ------------------------------------------------------------------ the launch

    async def run(self, action: str, build_id: str, code: str) -> None:
        spec = self.link.spec
        if spec.repo and build_id and not await self.build_matches(build_id):
            build_id = ""  # not this link's build: ask again
        if spec.repo and not build_id:
            build = await self.request_build()
            if build.get("status") != BUILT:
                self.render_building(build, action, code)
                return
            build_id = str(build["id"])
        server = await self.target_server(action)
        result = await self.ctx.hub.start_server(
            self.token, self.user, server, L.user_options(spec, build_id)
        )
        if result.status == 400 and "already running" in result.message and action == "launch":
            self.handler.redirect(self.handler.link_url(code))  # the page offers the choices
            return
        if not result.ok:
            self.refused(result)
        await self.ctx.store.record_launch(self.link.id, time.time())
        pending = f"{self.ctx.hub_prefix}spawn-pending/{quote(self.user, safe='')}"
        self.handler.redirect(pending + (f"/{quote(server, safe='')}" if server else ""))

    async def build_matches(self, build_id: str) -> bool:
        """A build id posted back by the build page must be a finished build of this link's
        repository (and of its pinned commit)."""
        build = await self.ctx.builds.get(build_id)
        spec = self.link.spec
        return bool(
            build is not None
            and build.status == BUILT
            and build.repo == spec.repo
            and (build.subdir or "") == spec.subdir
            and (spec.follow_branch or build.commit == spec.commit)
        )

    def refused(self, result: APIResult) -> None:
        if is_scope_refusal(result.status, result.message):
            message = (
                "The hub did not let this service start a server for you: "
                f"{result.message}. The service needs the scope servers!user "
                "(see the sharing docs); ask your hub admin."
            )
        else:
            message = f"The hub refused to start the server: {result.message}"
        status = result.status if 400 <= result.status < 500 else 502
        self.handler.fail_page(status, "Could not launch", message)

    async def request_build(self) -> dict[str, Any]:
        """Ask the build service for the link's image, as the recipient: a pinned commit that
        was built answers at once (same image); otherwise the build starts."""
        spec = self.link.spec
        try:
            build = await self.ctx.builds.request(self.user, spec.repo, spec.build_ref, spec.subdir)
        except FancyError as err:
            self.handler.fail_page(err.status, "Could not build this environment", err.message)
        return dict(build.to_json(self.ctx.prefix))

    def render_building(self, build: dict[str, Any], action: str, code: str) -> None:
        build_id = str(build.get("id", ""))
        self.handler.render_page(
            "building.html",
            title="Building the shared environment",
            link=self.link,
            spec=self.link.spec,
            build_id=build_id,
            events_url=f"{self.ctx.prefix}api/builds/{quote(build_id, safe='')}/events",
            launch_url=self.handler.link_url(code) + "/launch",
            action=action,
        )

    async def target_server(self, action: str) -> str:
        """The server a launch starts: the default one (stopped first for `replace`), or a
        new named one for `named`."""
        if action == "replace":
            await self.stop_default()
        return await self.new_server_name() if action == "named" else ""

    async def stop_default(self) -> None:
        result = await self.ctx.hub.stop_server(self.token, self.user, "")
        if result.status not in (202, 204, 400) and not result.ok:
            self.refused(result)
        deadline = time.monotonic() + self.ctx.config.stop_timeout
        while time.monotonic() < deadline:
            state = await self.situation()
            if not state.default_running and not state.default_pending:
                return
            await asyncio.sleep(0.5)
        self.handler.fail_page(
            504,
            "Your server is still stopping",
            "Your running server did not stop in time. Reload this page in a moment.",
        )

    async def new_server_name(self) -> str:
        if not self.ctx.config.allow_named_servers:
            self.handler.fail_page(400, "Named servers are off", "This hub has no named servers.")
        result = await self.ctx.hub.get_user(self.token, self.user)
        taken = list((result.body or {}).get("servers", {})) if result.ok else []
        return L.named_server_name(self.link.id, taken)
