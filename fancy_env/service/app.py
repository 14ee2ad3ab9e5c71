"""The one service app: the build API and sharing in one tornado application.

`FancyEnvService` is the build service's `BuilderApp` (its options stay `c.BuilderApp.*`) that
adds, when it runs under a hub, the sharing routes (`c.FancyEnvSharing.*`, links table in the
same database and engine as the builds), Binder URLs (`c.FancyEnvBinder.*`) and the users'
forge-token pages. Every part is given its collaborators here: the sharing handlers a
`SharingContext` whose `builds` is the builds layer's typed interface (`builder.port`),
image retention the links in use (`LinkStore.in_use`), the request log and every log record
the link-code redaction.
"""

from __future__ import annotations

import os
from typing import Any

from tornado.web import Application as WebApplication

from ..builder.app import BuilderApp
from ..builder.gc import Collector
from ..builder.port import ServiceBuilds
from ..builder.routes import Route
from ..builder.service import BuildService
from ..dbengine import shown
from ..sharing.binder_pages import FancyEnvBinder
from ..sharing.config import FancyEnvSharing, SharingContext
from ..sharing.links import redact_codes
from ..sharing.routes import sharing_routes
from ..sharing.store import LinkStore
from ..web.context import WebContext
from .logs import install_log_redaction


class FancyEnvService(BuilderApp):
    description = "The fancy_env service: repository builds and sharing by link."
    classes = [BuilderApp, FancyEnvSharing, FancyEnvBinder]
    redact = staticmethod(redact_codes)

    def initialize(self, argv: list[str] | None = None) -> None:
        install_log_redaction()
        super().initialize(argv)

    async def make_sharing(self, service: BuildService) -> SharingContext | None:
        """The sharing context; None (and a log line) when there is no hub to ask."""
        if not os.environ.get("JUPYTERHUB_API_TOKEN") or not os.environ.get("JUPYTERHUB_API_URL"):
            self.log.info("sharing is off: not running as a JupyterHub service")
            return None
        config = FancyEnvSharing(parent=self)
        # one engine per database: share the build store's (its SQLite settings included)
        ctx = await SharingContext.create(
            config, ServiceBuilds(service, self.service_prefix), self.db_url,
            self.service_prefix, profiles=config.profiles(), engine=service.store.engine,
        )  # fmt: skip
        self.log.info(  # never the password
            "sharing routes under %s (links table in %s)", self.service_prefix, shown(self.db_url)
        )
        return ctx

    async def make_web_app(
        self,
        service: BuildService,
        web: WebContext | None = None,
        collector: Collector | None = None,
        extra_routes: Any = (),
    ) -> WebApplication:
        web = web or self.make_web_context()
        ctx = await self.make_sharing(service)
        routes: list[Route] = list(extra_routes)
        if ctx is not None:
            routes += sharing_routes(web, ctx, FancyEnvBinder(parent=self))
        # links made while sharing was on still pin their images when it is off (the table
        # lives in the build database either way): retention always asks it
        links = (
            ctx.store
            if ctx is not None
            else await LinkStore.open(self.db_url, service.store.engine)
        )
        collector = collector or self.make_collector(service, links.in_use)
        return await super().make_web_app(service, web, collector, routes)


def main(argv: list[str] | None = None) -> None:
    app = FancyEnvService.instance()
    app.initialize(argv)
    app.start()
