"""What every handler of the service is given (through `initialize(web=...)`): who may do
what, how requests are authenticated, and the input limits. Built once by the assembly
(`fancy_env.service`); never read from tornado's settings dict."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..tickets import BUILD_SCOPE
from ..webinput import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_JSON_DEPTH


@dataclass(frozen=True)
class WebContext:
    prefix: str  # the service prefix, e.g. /services/fancy-env/
    log: logging.Logger
    hub_auth: Any = None  # jupyterhub.services.auth.HubOAuth; None when not under a hub
    ticket_secret: bytes = b""  # form tickets (shared with the spawner)
    service_name: str = "fancy-env"
    service_token: str = ""  # the service's own API token (the hub's spawners use it)
    admin_users: frozenset[str] = frozenset()
    build_scope: str = BUILD_SCOPE  # '' = any authenticated user may build
    admin_scope: str = ""
    access_scopes: frozenset[str] = field(default_factory=frozenset)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
