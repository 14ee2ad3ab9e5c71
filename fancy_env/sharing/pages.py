""" "Environment links" page: create a link (from a recent build, or for a profile and its
choices), list your links (admins: everyone's), revoke them."""

from __future__ import annotations

import time
from typing import Any

from ..profiles import visible_profiles
from ..validation import user_options_from_form
from .base import SharingHandler

EXPIRY_CHOICES = [
    (86400, "1 day"),
    (7 * 86400, "1 week"),
    (30 * 86400, "30 days"),
    (90 * 86400, "90 days"),
    (365 * 86400, "1 year"),
]
RECENT_BUILDS = 20
#: form fields that are link fields, not profile options
LINK_FIELDS = ("build_id", "urlpath", "labpath")


class MyLinksPageHandler(SharingHandler):
    async def get(self) -> None:
        await self.show()

    async def post(self) -> None:
        link, code = await self.create_link(self.form_body())
        await self.show(created={"link": link, "url": self.full_url(self.link_url(code))})

    def form_body(self) -> dict[str, Any]:
        """The create forms post KubeSpawner's field names plus our link fields."""
        args = {k: [v.decode("utf-8", "replace") for v in vs]
                for k, vs in self.request.body_arguments.items()}  # fmt: skip
        options = user_options_from_form(args)
        body: dict[str, Any] = {
            "profile": options.pop("profile", ""),
            "options": {k: v for k, v in options.items() if k not in LINK_FIELDS and v},
            "follow_branch": self.get_body_argument("follow_branch", "") == "on",
            "note": self.get_body_argument("note", ""),
        }
        for key in LINK_FIELDS:  # build_id, and what the launch opens
            if options.get(key):
                body[key] = options[key]
        try:
            body["expires_in"] = int(self.get_body_argument("expires_in", ""))
        except ValueError:
            pass  # the default lifetime
        return body

    def full_url(self, path: str) -> str:
        return f"{self.request.protocol}://{self.request.host}{path}"

    async def recent_builds(self) -> list[Any]:
        seen: set[tuple[str, str]] = set()
        builds = []
        for build in await self.ctx.builds.history(self.username, limit=100):
            key = (build.repo, build.commit)
            if build.status == "built" and key not in seen:
                seen.add(key)
                builds.append(build)
        return builds[:RECENT_BUILDS]

    async def show(self, created: dict[str, Any] | None = None) -> None:
        show_all = self.get_argument("all", "") == "1" and self.is_admin
        user = self.current_user or {}
        profiles = visible_profiles(
            self.ctx.profiles or (), self.username, user.get("groups") or []
        )
        self.render_page(
            "mylinks.html",
            title="Environment links",
            links=await self.ctx.store.list(owner=None if show_all else self.username),
            now=time.time(),
            show_all=show_all,
            is_admin=self.is_admin,
            created=created,
            profiles=profiles,
            repo_profiles=[p for p in profiles if p.repository_build.enabled],
            builds=await self.recent_builds(),
            expiry_choices=EXPIRY_CHOICES,
            page_url=f"{self.ctx.prefix}links",
            api_url=f"{self.ctx.prefix}api/links",
        )
