"""`enable_binder(c, service)`: turn Binder launch URLs on in `jupyterhub_config.py`, after
`service = fancy_env.setup(c, ...)` and `enable_sharing(c, service)`.

A badge links to `https://<hub>/v2/gh/<owner>/<repo>/<ref>?labpath=…`; with a `base_url`,
`<base_url>v2/…`. The hub answers every path outside `<base_url>hub/` with a redirect into
it (JupyterHub's prefix redirect), so the request arrives at `<base_url>hub/v2/…`, where the
handler added here (`c.JupyterHub.extra_handlers`, still supported by JupyterHub 6.1, which
logs that it is deprecated) sends it on to the service's own page `<service prefix>v2/…`,
query kept. It redirects only there: a path whose `.`/`..` segments (also percent-encoded),
backslashes or control characters could take a browser elsewhere gets a 400.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from ..binder import BinderError, hub_redirect_target
from ..hubconfig import update_service_config


def _get(config: Any, name: str, default: Any) -> Any:
    return config[name] if name in config else default


class BinderRedirectHandler(web.RequestHandler):
    """`<base_url>hub/v2/<rest>?<query>` -> `<service prefix>v2/<rest>?<query>` (302)."""

    def initialize(self, hub_prefix: str, service_prefix: str) -> None:
        self.hub_prefix = hub_prefix
        self.service_prefix = service_prefix

    def get(self, _rest: str) -> None:
        head = self.hub_prefix.rstrip("/") + "/v2/"
        path = self.request.path  # raw: an escaped %2F in the spec stays escaped
        rest = path[len(head) :] if path.startswith(head) else ""
        try:
            target = hub_redirect_target(self.service_prefix, rest, self.request.query)
        except BinderError as err:
            self.set_status(err.status if 400 <= err.status < 500 else 400)
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish(f"{err.field}: {err.message}\n")
            return
        self.redirect(target, permanent=False)

    head = get


def enable_binder(
    c: Any, service: dict[str, Any], *, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Serve Binder launch URLs on this hub: the hub-side redirect, and
    `FancyEnvBinder.enabled = True` plus `options` (other `FancyEnvBinder` traits, e.g.
    `{"launch_at_once": True}`) in the service's 0600 config file. Returns those options."""
    base_url = str(_get(c.JupyterHub, "base_url", "/")).rstrip("/") + "/"
    service_prefix = f"{base_url}services/{service['name']}/"
    kwargs = {"hub_prefix": f"{base_url}hub/", "service_prefix": service_prefix}
    handlers = [h for h in _get(c.JupyterHub, "extra_handlers", []) if h[0] != r"/v2/(.*)"]
    c.JupyterHub.extra_handlers = [*handlers, (r"/v2/(.*)", BinderRedirectHandler, kwargs)]
    binder = {"enabled": True, **(options or {})}
    update_service_config(service, "FancyEnvBinder", binder)
    return binder
