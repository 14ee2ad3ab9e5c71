"""Mount the sharing routes into the build service's tornado application.

The build service calls `await mount_sharing(builder_app, web_app)` once, after building its tornado
Application. Sharing reads its options from the same config (`c.FancyEnvSharing.*`), keeps its
table in the same database (`BuilderApp.db_url`), and requests builds in-process through the
`build_service` in the settings, on behalf of the link's recipient.
"""

from __future__ import annotations

import os
from typing import Any

from tornado.web import Application as WebApplication

from ..dbengine import shown
from .config import SETTINGS_KEY, FancyEnvSharing, SharingContext
from .credpages import credential_handlers
from .handlers import sharing_handlers


async def mount_sharing(builder: Any, web_app: WebApplication) -> bool:
    """Add the sharing routes to `web_app`; False (and a log line) when there is no hub."""
    log = builder.log
    if web_app.settings.get("hub_auth") is None or not os.environ.get("JUPYTERHUB_API_URL"):
        log.info("sharing is off: not running as a JupyterHub service")
        return False
    config = FancyEnvSharing(parent=builder)
    prefix = str(builder.service_prefix)
    # one engine per database: share the build store's (its SQLite settings included)
    engine = web_app.settings["build_service"].store.engine
    ctx = await SharingContext.create(
        config, builder.db_url, prefix, profiles=config.profiles(),
        engine=engine,
    )  # fmt: skip
    web_app.settings[SETTINGS_KEY] = ctx
    # the build service serves `oauth_callback` itself (with the same HubOAuth instance);
    # added rules take precedence over the application's own (tornado's add_handlers)
    web_app.add_handlers(r".*$", list(sharing_handlers(prefix, web_app.settings)))
    from .binder_pages import FancyEnvBinder, binder_handlers  # Binder URLs (off by default)

    web_app.add_handlers(r".*$", binder_handlers(prefix, FancyEnvBinder(parent=builder)))
    web_app.add_handlers(r".*$", credential_handlers(prefix))  # users' forge tokens
    # never the password
    log.info("sharing routes mounted under %s (links table in %s)", prefix, shown(builder.db_url))
    return True
