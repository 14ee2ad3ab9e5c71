"""The build API's routes, each with the collaborators its handler receives."""

from __future__ import annotations

from typing import Any

from ..web.context import WebContext
from .gc_handler import GCHandler
from .handlers import (
    BuildHandler,
    BuildsHandler,
    EventsHandler,
    HealthHandler,
    MetricsHandler,
    RootHandler,
    StreamSettings,
)
from .pinning import LaunchHandler
from .service import BuildService

Route = tuple[str, type, dict[str, Any]]


def oauth_callback_handler() -> type:
    """HubOAuth's callback handler, given the service's HubOAuth instance (`hub_auth=`)."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    class OAuthCallbackHandler(HubOAuthCallbackHandler):
        def initialize(self, hub_auth: Any) -> None:
            self.hub_auth = hub_auth  # HubAuthenticated's public setter

    return OAuthCallbackHandler


def build_routes(
    web: WebContext, service: BuildService, streams: StreamSettings, collector: Any,
    metrics_require_auth: bool,
) -> list[Route]:  # fmt: skip
    """The build API's routes under the service prefix, with their collaborators."""
    p = web.prefix
    parts: dict[str, Any] = {"web": web, "service": service, "streams": streams}
    routes: list[Route] = [
        (rf"{p}api/builds/?", BuildsHandler, parts),
        (rf"{p}api/builds/([0-9a-f]+)/?", BuildHandler, parts),
        (rf"{p}api/builds/([0-9a-f]+)/events", EventsHandler, parts),
        (rf"{p}api/builds/([0-9a-f]+)/launch", LaunchHandler, parts),
        (rf"{p}api/gc", GCHandler, {**parts, "collector": collector}),
        (rf"{p}health", HealthHandler, parts),
        (rf"{p}metrics", MetricsHandler, {**parts, "require_auth": metrics_require_auth}),
        (rf"{p}?", RootHandler, parts),
    ]
    if web.hub_auth is not None:
        routes.insert(
            0, (rf"{p}oauth_callback", oauth_callback_handler(), {"hub_auth": web.hub_auth})
        )
    return routes
