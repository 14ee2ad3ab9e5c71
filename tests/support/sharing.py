"""Helpers for the sharing tests: hub config for the sharing service, and a browser-like
`requests` session that follows the service's OAuth login and posts its forms with _xsrf."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

import requests

from . import db
from .hub import HubProcess
from .net import free_port

REPO = Path(__file__).resolve().parent.parent.parent
#: the form-ticket secret the sharing tests' service is started with (hex)
TICKET_SECRET_HEX = "73686172696e672d7465737473"

#: What the service asks for on behalf of a logged-in user (see docs/sharing.md).
OAUTH_SCOPES = [
    "read:users!user",  # name, admin flag, groups (the recipient's own permissions)
    "read:servers!user",  # which servers run (the "already running" choices)
    "servers!user",  # start and stop the recipient's own servers
    "shares!user",  # create and revoke share codes for the owner's servers
]

NO_SHARE_ROLES = """
c.JupyterHub.extra_user_scopes.update({"access:services!service=fancy-env"})
"""
#: JupyterHub 6's default user role has only `self`; sharing servers needs `shares!user`.
SHARE_ROLES = """
c.JupyterHub.extra_user_scopes.update({"shares!user", "access:services!service=fancy-env"})
"""


def sharing_service_config(
    state: Path,
    service_config: str = "",
    port: int | None = None,
    name: str = "fancy-env",
    share_scope: bool = True,
) -> str:
    """Hub config lines registering the service (`python -m fancy_env.service`) with the
    fake executor, for the sharing tests (`service_config`: `c.FancyEnvSharing.*` lines)."""
    state.mkdir(parents=True, exist_ok=True)
    cfg = state / "sharing_config.py"
    cfg.write_text(
        "c = get_config()  # noqa\n"
        f"c.BuilderApp.db_url = {db.url_for(state, 'links.sqlite')!r}\n"
        'c.BuilderApp.executor_class = "fake"\n'
        "c.BuilderApp.gc_local_engine = False\n" + service_config
    )
    port = port or free_port()
    command = [sys.executable, "-m", "fancy_env.service", f"--config={cfg}"]
    env = {"PYTHONPATH": str(REPO), "FANCY_ENV_TICKET_SECRET": TICKET_SECRET_HEX}
    return f"""
c.JupyterHub.services.append({{
    "name": {name!r},
    "url": "http://127.0.0.1:{port}",
    "command": {command!r},
    "oauth_client_allowed_scopes": {OAUTH_SCOPES!r},
    "oauth_no_confirm": True,
    "environment": {env!r},
}})
{SHARE_ROLES if share_scope else NO_SHARE_ROLES}
"""


XSRF_RE = re.compile(r'name="_xsrf" value="([^"]+)"')


def login(hub: HubProcess, name: str, password: str = "x") -> requests.Session:
    """Log in through the hub's form without starting a server (next = hub home)."""
    s = requests.Session()
    s.get(hub.url + "hub/login", timeout=10)
    xsrf = s.cookies.get("_xsrf", "")
    r = s.post(
        hub.url + "hub/login",
        params={"next": hub.base_url + "hub/home"},
        data={"username": name, "password": password, "_xsrf": xsrf},
        timeout=30,
    )
    r.raise_for_status()
    return s


class Browser:
    """A logged-in user, as a browser would be (cookies, redirects, forms)."""

    def __init__(self, hub: HubProcess, name: str, password: str = "x") -> None:
        self.hub = hub
        self.name = name
        self.session = login(hub, name, password)
        self.last: requests.Response | None = None

    def get(self, url: str, **kw: Any) -> requests.Response:
        self.last = self.session.get(self._abs(url), timeout=kw.pop("timeout", 60), **kw)
        return self.last

    def post_form(
        self, url: str, data: dict[str, str], page: str | None = None
    ) -> requests.Response:
        """POST like a form on `page` (default: the last page) would, with its _xsrf."""
        source = page if page is not None else (self.last.text if self.last else "")
        match = XSRF_RE.search(source)
        fields = dict(data)
        if match:
            fields["_xsrf"] = html.unescape(match.group(1))
        self.last = self.session.post(self._abs(url), data=fields, timeout=180)
        return self.last

    def api(self, method: str, url: str, **kw: Any) -> requests.Response:
        """A JSON call with the service's cookie (as the page's own fetch() would)."""
        xsrf = ""
        for cookie in self.session.cookies:
            if cookie.name == "_xsrf" and "services" in (cookie.path or ""):
                xsrf = cookie.value or ""
        headers = {"X-XSRFToken": xsrf} if xsrf else {}
        return self.session.request(method, self._abs(url), headers=headers, timeout=60, **kw)

    def _abs(self, url: str) -> str:
        if url.startswith("http"):
            return url
        return f"http://127.0.0.1:{self.hub.port}{url}"
