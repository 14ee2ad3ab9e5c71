"""The sharing routes under the service prefix, each with what its handler receives
(`web`: the service's WebContext; `ctx`: the SharingContext; Binder pages their options)."""

from __future__ import annotations

from typing import Any

from ..web.context import WebContext
from .binder_pages import BinderPageHandler, FancyEnvBinder
from .config import SharingContext
from .credpages import CredentialsAPIHandler, CredentialsPageHandler
from .handlers import (
    CODE_RE,
    ID_RE,
    LinkAPIHandler,
    LinkLaunchHandler,
    LinkPageHandler,
    LinksAPIHandler,
)
from .pages import MyLinksPageHandler
from .shares import ShareServerHandler

Route = tuple[str, type, dict[str, Any]]


def sharing_routes(web: WebContext, ctx: SharingContext, binder: FancyEnvBinder) -> list[Route]:
    """Links, share codes, users' forge tokens and (when on) Binder URLs."""
    p = ctx.prefix
    parts: dict[str, Any] = {"web": web, "ctx": ctx}
    return [
        (rf"{p}api/links", LinksAPIHandler, parts),
        (rf"{p}api/links/{ID_RE}", LinkAPIHandler, parts),
        (rf"{p}l/{CODE_RE}", LinkPageHandler, parts),
        (rf"{p}l/{CODE_RE}/launch", LinkLaunchHandler, parts),
        (rf"{p}links", MyLinksPageHandler, parts),
        (rf"{p}share", ShareServerHandler, parts),
        (rf"{p}share/([^/]+)", ShareServerHandler, parts),
        (rf"{p}credentials", CredentialsPageHandler, parts),
        (rf"{p}api/credentials", CredentialsAPIHandler, parts),
        (rf"{p}v2/([^/]+)/(.+)", BinderPageHandler, {**parts, "binder": binder}),
    ]
