"""`fancy_env.setup(c)`: one call in jupyterhub_config.py wires the build service in.

It registers the managed service `fancy-env` (started by the hub, OAuth for browsers),
defines the scopes `custom:fancy-env:build` (granted to every user, with access to the
service; the `user` role keeps `self`) and `custom:fancy-env:admin`, and points the spawners
at the service (`builder_url`, `builder_api_url`, `builder_api_token`, `ticket_secret`,
`image_prefix`, `build_confirmer`). Everything it sets is plain config, so any value can be
changed after the call; call it after setting `c.JupyterHub.base_url`.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from .buildref import HTTPBuildConfirmer

BUILD_SCOPE = "custom:fancy-env:build"
ADMIN_SCOPE = "custom:fancy-env:admin"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


def _secret(state_dir: Path, name: str) -> str:
    """A random secret persisted (mode 0600) in the state directory."""
    path = state_dir / name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def _get(config: Any, name: str, default: Any) -> Any:
    return config[name] if name in config else default


def _grant_user_scopes(c: Any, scopes: list[str]) -> None:
    roles = list(_get(c.JupyterHub, "load_roles", []))
    user_role = next((r for r in roles if r.get("name") == "user" and "scopes" in r), None)
    if user_role is not None:  # the admin redefined the user role: add to it, keep `self`
        user_role["scopes"] = sorted({*user_role["scopes"], "self", *scopes})
        c.JupyterHub.load_roles = roles
    else:
        c.JupyterHub.extra_user_scopes = {*_get(c.JupyterHub, "extra_user_scopes", set()), *scopes}


# image retention (fancy_env.builder.gc) asks the hub which servers run, and which build each
# one launched (its user_options); without these it removes nothing
RETENTION_SCOPES = ["list:users", "read:servers"]


def _grant_service_scopes(c: Any, name: str, scopes: list[str]) -> None:
    role_name = f"{name}-service"
    roles = [r for r in _get(c.JupyterHub, "load_roles", []) if r.get("name") != role_name]
    role = {"name": role_name, "scopes": scopes, "services": [name]}
    c.JupyterHub.load_roles = [*roles, role]


def setup(
    c: Any,
    *,
    name: str = "fancy-env",
    port: int = 8765,
    state_dir: str | os.PathLike[str] | None = None,
    executor: str = "docker",
    image_prefix: str = "fancy-env/",
    allow_loopback_repos: bool = False,
    grant_to_all_users: bool = True,
    builder_config: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Register the build service and point the spawners at it; returns the service entry.

    `builder_config` holds extra build-service config by class, e.g.
    `{"BuilderApp": {"max_concurrent_builds": 4}, "DockerExecutor": {"user_id": 1000}}`.
    `allow_loopback_repos` lets users build from http://127.0.0.1 (tests, demos only).
    """
    state = Path(state_dir or Path.cwd() / "fancy-env-builder").resolve()
    state.mkdir(parents=True, exist_ok=True)
    ticket_secret = _secret(state, "ticket_secret")
    api_token = secrets.token_hex(32)
    base_url = str(_get(c.JupyterHub, "base_url", "/")).rstrip("/") + "/"
    prefix = f"{base_url}services/{name}/"

    app_config: dict[str, Any] = {"executor_class": executor, "image_prefix": image_prefix}
    if allow_loopback_repos:
        app_config["allowed_http_hosts"] = LOOPBACK_HOSTS
        app_config["allowed_private_hosts"] = LOOPBACK_HOSTS
    config: dict[str, dict[str, Any]] = {"BuilderApp": app_config}
    for section, values in (builder_config or {}).items():
        config.setdefault(section, {}).update(values)

    service = _service_entry(name, port, state, api_token, ticket_secret, config)
    services = [s for s in _get(c.JupyterHub, "services", []) if s.get("name") != name]
    c.JupyterHub.services = [*services, service]

    custom = dict(_get(c.JupyterHub, "custom_scopes", {}))
    custom[BUILD_SCOPE] = {"description": "Build images from Git repositories with fancy-env."}
    custom[ADMIN_SCOPE] = {"description": "See and cancel every user's fancy-env builds."}
    c.JupyterHub.custom_scopes = custom
    if grant_to_all_users:
        _grant_user_scopes(c, [BUILD_SCOPE, f"access:services!service={name}"])

    _grant_service_scopes(c, name, RETENTION_SCOPES)

    api_url = f"http://127.0.0.1:{port}{prefix}"
    spawner = c.FancySpawnerMixin
    spawner.builder_url = prefix
    spawner.builder_api_url = api_url
    spawner.builder_api_token = api_token
    spawner.ticket_secret = ticket_secret
    spawner.image_prefix = image_prefix
    spawner.build_confirmer = HTTPBuildConfirmer(api_url, api_token, image_prefix)
    return service


def _service_entry(
    name: str, port: int, state: Path, api_token: str, ticket_secret: str, config: dict[str, Any]
) -> dict[str, Any]:
    package_root = str(Path(__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    return {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "fancy_env.builder"],
        "cwd": str(state),
        "api_token": api_token,
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [BUILD_SCOPE, ADMIN_SCOPE],
        "display": False,
        "environment": {
            "FANCY_ENV_TICKET_SECRET": ticket_secret,
            "FANCY_ENV_BUILDER_CONFIG": json.dumps(config),
            "PYTHONPATH": pythonpath,
        },
    }
