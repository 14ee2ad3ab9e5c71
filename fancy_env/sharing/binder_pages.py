"""Binder launch URLs under the service: `<service prefix>v2/<provider>/<spec>?labpath=…`.

GET (login first, through the service's HubOAuth flow, back to the same URL) shows what will
launch: the repository, the ref, the file to open, and a profile choice when more than one of
the recipient's profiles builds from that repository. POST (XSRF-checked) requests the build
as the recipient (the building page follows its live log and posts back), then starts the
recipient's server with the build and the urlpath for that start only, as a link's launch
does (`LaunchFlow`). Every refusal is a page with a 4xx naming the field.

The hub side (`<base_url>v2/…` → here) is in `binder_setup.py`; the parser in
`fancy_env/binder.py`.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any
from urllib.parse import quote

from traitlets import Bool, Unicode
from traitlets.config import Configurable

from ..binder import BinderError, BinderRequest, parse_binder, query_values, split_v2_path
from ..profiles import visible_profiles
from ..repos import RepoError
from ..web.context import WebContext
from . import links as L
from .base import SharingHandler
from .config import SharingContext
from .launch import BUILT, LaunchFlow
from .permissions import check_spec

TITLE = "Launch from a Binder link"
REFUSED = "This Binder link cannot launch here"


class FancyEnvBinder(Configurable):
    """Binder launch URLs (`/v2/gh/…`, `/v2/gl/…`, `/v2/git/…`), as on mybinder.org."""

    enabled = Bool(
        False,
        help="""Serve Binder launch URLs (`<base_url>v2/<provider>/<spec>`), so that a "launch
        binder" badge with this hub's host launches here, through the hub's login, the
        recipient's profiles and the build service's repository policy. Off by default: the
        web at large already links to this URL shape, and the admin decides whether this hub
        answers it. `fancy_env.sharing.binder_setup.enable_binder(c, service)` turns it on
        (and adds the hub-side redirect).""",
    ).tag(config=True)

    github_url = Unicode(
        "https://github.com",
        help="""The forge `v2/gh/<owner>/<repo>/<ref>` names: `<github_url>/<owner>/<repo>`.
        Change it for GitHub Enterprise. The URL still has to pass the build service's
        policy (`allowed_repos`, `allowed_http_hosts`, private hosts).""",
    ).tag(config=True)

    gitlab_url = Unicode(
        "https://gitlab.com",
        help="""The forge `v2/gl/<url-encoded project path>/<ref>` names:
        `<gitlab_url>/<project path>`. Change it for a self-hosted GitLab; the build
        service's policy still applies.""",
    ).tag(config=True)

    launch_at_once = Bool(
        False,
        help="""Skip the click on the confirmation page: it submits itself when nothing needs
        choosing (one profile, no running server). Off by default, so that a Binder link
        always shows which repository it builds and runs before it does. The recipient's own
        permissions and the build policy apply either way; a running server is never
        replaced without asking.""",
    ).tag(config=True)


class BinderFlow(LaunchFlow):
    """A link's launch, for a Binder URL: the building page posts back to the Binder URL."""

    page_url = ""

    async def launch(self, action: str, build_id: str) -> None:
        spec = self.link.spec
        if build_id and not await self.build_matches(build_id):
            build_id = ""  # not this repository's build: ask again
        if not build_id:
            build = await self.request_build()
            if build.get("status") != BUILT:
                self.render_binder_building(build, action)
                return
            build_id = str(build["id"])
        server = await self.target_server(action)
        options = L.user_options(spec, build_id)
        if not spec.profile:
            options.pop("profile")  # the hub's default profile (the service knows none)
        result = await self.ctx.hub.start_server(self.token, self.user, server, options)
        if result.status == 400 and "already running" in result.message and action == "launch":
            self.handler.redirect(self.page_url)  # the page offers the choices
            return
        if not result.ok:
            self.refused(result)
        pending = f"{self.ctx.hub_prefix}spawn-pending/{quote(self.user, safe='')}"
        self.handler.redirect(pending + (f"/{quote(server, safe='')}" if server else ""))

    def render_binder_building(self, build: dict[str, Any], action: str) -> None:
        build_id = str(build.get("id", ""))
        self.handler.render_page(
            "binder_building.html",
            title="Building the environment",
            spec=self.link.spec,
            build_id=build_id,
            events_url=f"{self.ctx.prefix}api/builds/{quote(build_id, safe='')}/events",
            launch_url=self.page_url,
            action=action,
        )


class BinderPageHandler(SharingHandler):
    def initialize(  # type: ignore[override]
        self, web: WebContext, ctx: SharingContext, binder: FancyEnvBinder, **_: Any
    ) -> None:
        super().initialize(web, ctx)
        self.binder = binder

    async def prepare(self) -> None:
        self.navigation()  # a read-only page view needs no XSRF check
        await super().prepare()
        if not self.binder.enabled:
            self.fail_page(
                404,
                "Binder links are off",
                "This hub does not launch Binder links (…/v2/…). Ask your hub admin, or open "
                "the repository from the spawn form.",
            )

    def binder_request(self) -> BinderRequest:
        try:
            provider, raw_spec = split_v2_path(self.request.path, self.ctx.prefix)
            return parse_binder(
                provider, raw_spec, query_values(self.request.query_arguments),
                github_url=self.binder.github_url, gitlab_url=self.binder.gitlab_url,
            )  # fmt: skip
        except BinderError as err:
            self.fail_page(err.status, REFUSED, f"{err.field}: {err.message}")

    def checked_repo(self, req: BinderRequest) -> str:
        """The repository as the build service names it; refused with the service's reason
        (http, private or loopback hosts, `allowed_repos`, `denied_repos`)."""
        try:
            return str(self.ctx.builds.normalise(req.repo, req.ref).url)
        except RepoError as err:
            self.fail_page(400, REFUSED, f"{err.field}: {err.reason}")

    def check_may_build(self) -> None:
        if self.identity is not None and self.identity.can_build:
            return
        self.fail_page(
            403,
            REFUSED,
            f"permission: building from a repository needs the scope {self.web.build_scope}, "
            "which your account does not have. Ask your hub admin for it.",
        )

    def profile_choices(self, repo: str) -> list[Any]:
        """The recipient's profiles that build from repositories and allow `repo`; [] when the
        service does not know the hub's profiles (the hub's default then applies)."""
        if not self.ctx.profiles:
            return []
        user = self.current_user or {}
        mine = visible_profiles(self.ctx.profiles, self.username, user.get("groups") or [])
        choices = [
            p for p in mine
            if p.repository_build.enabled
            and (not p.repository_build.allowed_repos
                 or any(re.fullmatch(pat, repo) for pat in p.repository_build.allowed_repos))
        ]  # fmt: skip
        if not choices:
            self.fail_page(
                403,
                REFUSED,
                "profile: none of the profiles you may use builds this repository. Ask your "
                "hub admin which repositories your profiles allow.",
            )
        return choices

    def launch_spec(self, req: BinderRequest, repo: str, profile: str) -> L.LinkSpec:
        spec = L.LinkSpec(
            profile=profile, repo=repo, ref=req.ref, follow_branch=True, urlpath=req.urlpath
        )
        refusal = check_spec(self.ctx.profiles, self.current_user, spec) if profile else None
        if refusal:
            self.fail_page(403, REFUSED, refusal)
        return spec

    def flow(self, spec: L.LinkSpec) -> BinderFlow:
        key = hashlib.sha256(f"{spec.repo}\0{spec.ref}".encode()).hexdigest()[:16]
        link = L.Link(f"binder{key}", "", self.username, spec, time.time())
        flow = BinderFlow(self, link)
        flow.page_url = self.request.uri or self.request.path
        return flow

    def prepared(self) -> tuple[BinderRequest, str, list[Any]]:
        req = self.binder_request()
        repo = self.checked_repo(req)
        self.check_may_build()
        return req, repo, self.profile_choices(repo)

    async def get(self, provider: str, spec: str) -> None:
        req, repo, choices = self.prepared()
        default = next((p for p in choices if p.default), choices[0] if choices else None)
        flow = self.flow(self.launch_spec(req, repo, default.slug if default else ""))
        actions = L.offered_actions(await flow.situation())
        self.render_page(
            "binder.html",
            title=TITLE,
            req=req,
            repo=repo,
            choices=choices,
            chosen=default.slug if default else "",
            actions=actions,
            autostart=self.binder.launch_at_once and actions == ["launch"] and len(choices) < 2,
            launch_url=flow.page_url,
            server_url=flow.server_url(""),
        )

    async def post(self, provider: str, spec: str) -> None:
        req, repo, choices = self.prepared()
        slug = self.get_body_argument("profile", "")
        if choices and slug not in [p.slug for p in choices]:
            allowed = ", ".join(p.slug for p in choices)
            self.fail_page(400, REFUSED, f"profile: choose one of {allowed}")
        action = self.get_body_argument("action", "launch")
        if action not in ("launch", "replace", "named"):
            self.fail_page(400, REFUSED, "action: must be launch, replace or named")
        flow = self.flow(self.launch_spec(req, repo, slug if choices else ""))
        await flow.launch(action, self.get_body_argument("build_id", ""))
