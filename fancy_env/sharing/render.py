"""Base handler for the sharing pages: HubOAuth login, templates, and error pages that say
what happened (never a traceback)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, NoReturn

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado import web

from ..webheaders import set_security_headers
from . import hubpage

TEMPLATES = Path(__file__).parent / "templates"


class PageError(web.HTTPError):
    """An error shown as a page with a title and a plain-language message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(status, message)
        self.title = title
        self.message = message


class SharingPage(HubOAuthenticated, web.RequestHandler):
    json_errors = False
    _hub_auth_user_cache: Any

    @property
    def hub_auth(self) -> HubOAuth:
        auth = self.settings.get("hub_auth")
        if auth is None:
            auth = HubOAuth.instance()
        return auth

    def set_default_headers(self) -> None:
        set_security_headers(self)

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
        ctx = self.settings.get("fancy_env_sharing")
        hub_prefix = getattr(ctx, "hub_prefix", "/hub/")
        prefix = getattr(ctx, "prefix", "/")
        paths = tuple(getattr(getattr(ctx, "config", None), "hub_template_paths", None) or ())
        user = getattr(self, "_hub_auth_user_cache", None)
        ns = hubpage.namespace(hub_prefix, prefix, self.request.path, user)
        return hubpage.render(paths, title, body.decode("utf-8"), ns)

    def page_namespace(self) -> dict[str, Any]:
        hub_prefix = self.settings.get("fancy_env_sharing").hub_prefix  # type: ignore[union-attr]
        return {
            "fmt_time": self.format_time,
            "hub_prefix": hub_prefix,
            "user": (getattr(self, "_hub_auth_user_cache", None) or {}).get("name", ""),
            "prefix": self.settings.get("fancy_env_sharing").prefix,  # type: ignore[union-attr]
        }

    def fail_page(self, status: int, title: str, message: str) -> NoReturn:
        raise PageError(status, title, message)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = ""
        title = self._reason
        for name, value in getattr(exc, "headers", {}).items():
            self.set_header(name, value)  # e.g. Retry-After (send_error cleared the headers)
        if isinstance(exc, PageError):
            title, message = exc.title, exc.message
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code >= 500:
            message = "Something went wrong on our side; the service log has the details."
        if self.json_errors:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": status_code, "message": message or title}))
            return
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        try:
            ns = self.page_namespace()
        except Exception:  # noqa: BLE001 - an error page must always render
            ns = {"fmt_time": self.format_time, "hub_prefix": "/hub/", "user": "", "prefix": "/"}
        ns.update(title=title, message=message, status=status_code)
        body = self.render_string("error.html", **ns)
        try:
            self.finish(self.in_hub_page(str(title), body))
        except Exception:  # noqa: BLE001 - an error page must always render
            self.finish(body)
