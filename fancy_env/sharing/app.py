"""Run the sharing routes on their own, as a JupyterHub managed service.

Normally the build service mounts `sharing_handlers(...)` under its prefix (so links can launch
built images). This small app serves the same routes alone — useful for a hub without
repository builds (links to profiles only) and for the sharing tests:

    c.JupyterHub.services = [{"name": "fancy-env", "url": "http://127.0.0.1:8766",
        "command": [sys.executable, "-m", "fancy_env.sharing.app", "--db-url=sqlite:///l.db"],
        "oauth_client_allowed_scopes": [...], "oauth_no_confirm": True}]
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth
from tornado import web
from traitlets import Unicode
from traitlets.config import Application, Config

from ..builder.app import install_log_redaction
from ..builder.handlers import oauth_callback_handler
from ..hubconfig import SERVICE_FILE_ENV, read_service_file
from ..tickets import secret_bytes
from .config import SETTINGS_KEY, FancyEnvSharing, SharingContext
from .handlers import sharing_handlers


def make_settings(ctx: SharingContext, hub_auth: HubOAuth) -> dict[str, Any]:
    return {
        SETTINGS_KEY: ctx,
        "hub_auth": hub_auth,
        "cookie_secret": os.environ.get("JPY_COOKIE_SECRET") or secrets.token_bytes(32),
        "xsrf_cookies": True,
        "login_url": hub_auth.login_url,
        "ticket_secret": _ticket_secret(),
    }


def _ticket_secret() -> bytes:
    """From the 0600 service file fancy_env.setup(c) writes, else $FANCY_ENV_TICKET_SECRET."""
    path = os.environ.get(SERVICE_FILE_ENV)
    if path:
        return secret_bytes(str(read_service_file(path).get("ticket_secret") or ""))
    return secret_bytes(os.environ.get("FANCY_ENV_TICKET_SECRET", ""))


def make_app(ctx: SharingContext, hub_auth: HubOAuth) -> web.Application:
    settings = make_settings(ctx, hub_auth)
    handlers: list[Any] = list(sharing_handlers(ctx.prefix, settings))
    handlers.append((rf"{ctx.prefix}oauth_callback", oauth_callback_handler()))
    return web.Application(handlers, **settings)


class SharingApp(Application):
    name = "fancy-env-sharing"
    description = "Environment links and server share codes, as a JupyterHub service."
    classes = [FancyEnvSharing]

    db_url = Unicode(
        "sqlite:///fancy_env_links.sqlite",
        help="SQLAlchemy URL of the links database (the build service's, when it mounts us).",
    ).tag(config=True)

    config_file = Unicode("", help="A Python config file to load.").tag(config=True)

    aliases = {"db-url": "SharingApp.db_url", "config": "SharingApp.config_file"}

    async def start_async(self) -> None:
        path = os.environ.get(SERVICE_FILE_ENV)
        if path:  # the 0600 file of fancy_env.setup(c); the config file wins
            self.update_config(Config(read_service_file(path).get("config") or {}))
        if self.config_file:
            self.load_config_file(self.config_file)
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/fancy-env/")
        sharing = FancyEnvSharing(parent=self)
        profiles = sharing.profiles()
        ctx = await SharingContext.create(sharing, self.db_url, prefix, profiles=profiles)
        hub_auth = HubOAuth.instance(parent=self, api_url=os.environ["JUPYTERHUB_API_URL"])
        app = make_app(ctx, hub_auth)
        url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8766"))
        app.listen(url.port or 80, url.hostname or "127.0.0.1")
        self.log.info("sharing service on %s%s", url.geturl(), prefix)
        await asyncio.Event().wait()

    def start(self) -> None:
        install_log_redaction()
        asyncio.run(self.start_async())


def main(argv: list[str] | None = None) -> None:
    app = SharingApp()
    app.initialize(argv)
    app.start()


if __name__ == "__main__":
    main()
