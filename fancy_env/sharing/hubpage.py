"""The hub's own page template (`page.html`: navigation bar, Bootstrap 5 theme, dark mode)
around the sharing pages.

The sharing pages are Tornado templates (they use `xsrf_form_html` and the inlined bundles);
their rendered body goes into the `main` block of `sharing_page.html`, a Jinja2 template that
extends the hub's `page.html` exactly as the hub's own pages do. The loader searches like the
hub's: the admin's `c.JupyterHub.template_paths` first (copied by `enable_sharing` into
`FancyEnvSharing.hub_template_paths`), then the installed `jupyterhub` package's templates,
which are also reachable as `templates/<name>` for customised pages that extend them. The hub
serves the stylesheet and scripts the page links, under `<base_url>hub/static/`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, TemplateError
from markupsafe import Markup

SHELL_DIR = str(Path(__file__).parent / "page_templates")
SHELL = "fancy_env_sharing_page.html"
FALLBACK = "fancy_env_sharing_plain.html"
log = logging.getLogger(__name__)


def hub_template_dir() -> str:
    """The templates of the installed `jupyterhub` package (`share/jupyterhub/templates`)."""
    from jupyterhub._data import DATA_FILES_PATH

    return os.path.join(DATA_FILES_PATH, "templates")


@functools.lru_cache(maxsize=8)
def environment(extra_paths: tuple[str, ...]) -> Environment:
    """A Jinja2 environment that finds templates the way the hub does (autoescaped)."""
    base = hub_template_dir()
    loader = ChoiceLoader(
        [
            PrefixLoader({"templates": FileSystemLoader([base])}, "/"),
            FileSystemLoader([*extra_paths, base, SHELL_DIR]),
        ]
    )
    return Environment(loader=loader, autoescape=True)


def json_escaped(name: str) -> str:
    """`name` as the inside of a JS string literal in a <script> (what the hub's `user.
    json_escaped_name` is, with `<`, `>`, `&` escaped too so no name can end the script)."""
    text = json.dumps(name)[1:-1]
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def current_section(path: str, service_prefix: str) -> str:
    """Which sharing navigation item `path` belongs to: "links", "share" or ""."""
    rest = path[len(service_prefix) :] if path.startswith(service_prefix) else ""
    head = rest.split("/", 1)[0]
    return head if head in ("links", "share") else ""


def namespace(
    hub_prefix: str, service_prefix: str, path: str, user: dict[str, Any] | None
) -> dict[str, Any]:
    """What the hub's `page.html` reads (see JupyterHub's `BaseHandler.template_namespace`):
    `base_url` is the hub's prefix (`<base_url>hub/`), `prefix` the hub's `base_url`.

    The services menu is left out: listing the services a user may see needs scopes the
    sharing service does not hold. The Admin item shows for admins (and `admin-ui` holders).
    """
    model = None
    scopes: set[str] = set()
    if user and user.get("name"):
        name = str(user["name"])
        model = {"name": name, "json_escaped_name": json_escaped(name)}
        scopes = {str(s) for s in user.get("scopes") or ()} & {"admin-ui"}
        if user.get("admin"):
            scopes.add("admin-ui")
    base_url = hub_prefix[: -len("hub/")] if hub_prefix.endswith("/hub/") else "/"
    return {
        "base_url": hub_prefix,
        "prefix": base_url,
        "user": model,
        "admin_access": bool(user and user.get("admin")),
        "no_spawner_check": True,
        "login_url": f"{hub_prefix}login",
        "logout_url": f"{hub_prefix}logout",
        "static_url": lambda path, include_version=True: f"{hub_prefix}static/{path}",
        "version_hash": "",
        "services": [],
        "parsed_scopes": scopes,
        "xsrf_token": "",  # the hub's own scripts are not used on these pages
        "service_prefix": service_prefix,
        "current": current_section(path, service_prefix),
    }


def render(extra_paths: tuple[str, ...], title: str, body: str, ns: dict[str, Any]) -> str:
    """The page: `body` (HTML rendered by Tornado) inside the hub's page template; a plain
    page with the same links when the hub's templates cannot be loaded."""
    env = environment(extra_paths)
    args = {**ns, "title": title, "body": Markup(body)}  # noqa: S704 - our rendered template
    try:
        return env.get_template(SHELL).render(**args)
    except TemplateError as err:
        log.warning("the hub's page template did not render (%s); using a plain page", err)
        return env.get_template(FALLBACK).render(**args)
