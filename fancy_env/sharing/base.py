"""Base of the sharing routes: the service's one base handler (identity, scopes, XSRF,
errors: `fancy_env.web.handler`) plus what sharing adds — its context (`initialize(ctx=…)`),
the hub page the pages render in, and the link rules every door applies (create, the
repository named as the build service names it, the build a link is made from)."""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Any, NoReturn

from ..errors import FancyError, PageError
from ..web.context import WebContext
from ..web.handler import ServiceHandler
from . import hubpage
from . import links as L
from .config import SharingContext
from .permissions import check_spec

TEMPLATES = Path(__file__).parent / "templates"


class SharingHandler(ServiceHandler):
    """A sharing page (errors as pages; the hub cookie only, no form ticket)."""

    html_errors = True
    accepts_ticket = False

    def initialize(  # type: ignore[override]
        self, web: WebContext, ctx: SharingContext, **_: Any
    ) -> None:
        super().initialize(web)
        self.ctx = ctx

    # ---- pages ---------------------------------------------------------------------------

    def get_template_path(self) -> str:
        return str(TEMPLATES)

    def format_time(self, ts: float | None) -> str:
        if ts is None:
            return "never"
        when = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
        return when.strftime("%Y-%m-%d %H:%M UTC")

    def render_page(self, template: str, **kw: Any) -> None:
        ns = self.page_namespace()
        ns.update(kw)
        self.finish(self.in_hub_page(str(ns.get("title", "")), self.render_string(template, **ns)))

    def in_hub_page(self, title: str, body: bytes) -> str:
        """`body` inside the hub's own page template (see hubpage.py)."""
        paths = tuple(self.ctx.config.hub_template_paths or ())
        user = self.identity.model if self.identity else None
        ns = hubpage.namespace(self.ctx.hub_prefix, self.ctx.prefix, self.request.path, user)
        return hubpage.render(paths, title, body.decode("utf-8"), ns)

    def page_namespace(self) -> dict[str, Any]:
        return {
            "fmt_time": self.format_time,
            "hub_prefix": self.ctx.hub_prefix,
            "user": self.identity.name if self.identity else "",
            "prefix": self.ctx.prefix,
        }

    def fail_page(self, status: int, title: str, message: str) -> NoReturn:
        raise PageError(status, title, message)

    def error_page(self, status: int, title: str, message: str) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        try:
            ns = self.page_namespace()
        except Exception:  # noqa: BLE001 - an error page must always render
            ns = {"fmt_time": self.format_time, "hub_prefix": "/hub/", "user": "", "prefix": "/"}
        ns.update(title=title, message=message, status=status)
        body = self.render_string("error.html", **ns)
        try:
            self.finish(self.in_hub_page(str(title), body))
        except Exception:  # noqa: BLE001 - an error page must always render
            self.finish(body)

    def navigation(self) -> None:
        """A read-only page view: say so (Sec-Fetch-Mode: navigate) for JupyterHub's cookie
        auth, which otherwise logs "Skipping XSRF check for insecure request GET <path>",
        path and code included, for a browser on a non-https origin or curl."""
        if self.request.method in ("GET", "HEAD"):
            self.request.headers.setdefault("Sec-Fetch-Mode", "navigate")

    # ---- links ---------------------------------------------------------------------------

    async def create_link(self, body: Any) -> tuple[L.Link, str]:
        """Create a link for the current user from a request body; returns (link, code)."""
        ctx, now = self.ctx, time.time()
        policy = ctx.config.policy()
        if not ctx.config.links_enabled:
            raise FancyError(403, "creating environment links is turned off on this hub")
        body = await self.fill_from_build(body)
        spec = L.parse_link_request(body, policy)
        expires_at = L.parse_expiry(body.get("expires_in"), now, policy)
        spec = self.normalise_repo(spec)
        refusal = check_spec(ctx.profiles, self.current_user, spec)
        if refusal:  # whatever the credential: token, cookie or form ticket
            raise FancyError(403, f"you may not share this environment: {refusal}")
        recent = await ctx.store.created_since(self.username, now - policy.rate_window)
        decision = L.check_rate(recent, now, policy.rate_limit, policy.rate_window)
        if not decision.allowed:
            raise FancyError(
                429,
                f"too many links: at most {policy.rate_limit} per {policy.rate_window} s; "
                f"try again in {decision.retry_after} s",
                headers={"Retry-After": str(decision.retry_after)},
            )
        code = L.new_code()
        link = L.Link(L.new_link_id(), L.hash_code(code), self.username, spec, now, expires_at)
        await ctx.store.add(link)
        return link, code

    def normalise_repo(self, spec: L.LinkSpec) -> L.LinkSpec:
        """The repository as the build service names it (shorthands expanded), refused with
        the build service's reason (a RepoError, 400) when it would never build it."""
        if not spec.repo:
            return spec
        parsed = self.ctx.builds.normalise(spec.repo, spec.ref, spec.subdir)
        return dataclasses.replace(spec, repo=parsed.url, subdir=parsed.subdir)

    async def fill_from_build(self, body: Any) -> Any:
        """`{profile, options, build_id}` is enough: repository, ref and the resolved commit
        come from the build record (which the creator must have requested)."""
        if not isinstance(body, dict) or not body.get("build_id") or body.get("repo"):
            return body
        build = await self.ctx.builds.requested_by(str(body["build_id"]), self.username)
        if build is None:
            raise FancyError(404, f"no build {body['build_id']} of yours", "build_id")
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

    def may_build_or_fail(self, owner_words: str) -> None:
        """A page refusal when the recipient may not build (the one scope rule, `Identity`)."""
        if self.identity is not None and self.identity.can_build:
            return
        self.fail_page(
            403,
            "You cannot launch this environment",
            f"{owner_words}; building it needs the scope {self.web.build_scope}, which your "
            "account does not have. Ask your hub admin for it.",
        )


class APIHandler(SharingHandler):
    """A sharing JSON API route (errors as JSON; the form's ticket accepted)."""

    html_errors = False
    accepts_ticket = True
    message_names_field = True  # the sharing API's messages say "field: message"

    def body(self) -> Any:
        return self.json_body()
