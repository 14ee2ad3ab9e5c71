"""`fancy_env.setup(c)`: one call in jupyterhub_config.py wires the build service in.

It registers the managed service `fancy-env` (started by the hub, OAuth for browsers),
defines the scopes `custom:fancy-env:build` (granted to every user, with access to the
service; the `user` role keeps `self`) and `custom:fancy-env:admin`, and points the spawners
at the service (`builder_url`, `builder_api_url`, `builder_api_token`, `ticket_secret`,
`image_prefix`, `build_confirmer`). Everything it sets is plain config, so any value can be
changed after the call; call it after setting `c.JupyterHub.base_url`.

Secrets at rest: JupyterHub stores a managed service's `environment` in its database in plain
text, so no secret goes there. The ticket secret and the service's config are written to
`<state_dir>/service.json` (mode 0600, directory 0700) and the service is handed only the path
(`FANCY_ENV_SERVICE_FILE`). The config goes through the strict serialiser
`fancy_env.configdata`: sets and tuples arrive as sets and tuples, and a value it cannot carry
(a callable, an object, bytes, a non-string key) stops the hub at start with an error naming
its key path, e.g. `BuilderApp.foo`. The service's API token is in the hub's config only: JupyterHub
keeps its SHA-512 digest (api_tokens, oauth_clients) and passes the token itself to the
service process at launch (`JUPYTERHUB_API_TOKEN`), never writing it to the database.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from . import configdata
from .buildref import HTTPBuildConfirmer

BUILD_SCOPE = "custom:fancy-env:build"
ADMIN_SCOPE = "custom:fancy-env:admin"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


#: environment variable holding the path of the service file (never its contents)
SERVICE_FILE_ENV = "FANCY_ENV_SERVICE_FILE"
SERVICE_FILE = "service.json"
#: older, hand-made service entries: the config (never a secret) in this environment variable
CONFIG_ENV = "FANCY_ENV_BUILDER_CONFIG"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed; the directory itself is made mode 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def _secret(state_dir: Path, name: str) -> str:
    """A random secret persisted (mode 0600) in the state directory."""
    path = state_dir / name
    if path.exists():
        os.chmod(path, 0o600)
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_hex(32)
    write_private(path, value + "\n")
    return value


def read_service_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The service file: `{"ticket_secret": hex, "config": {Section: {trait: value}}}`, the
    config written by the strict serialiser (fancy_env.configdata: sets and tuples intact)."""
    data = configdata.loads(Path(path).read_text("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def write_service_file(path: Path, ticket_secret: str, config: dict[str, Any]) -> None:
    """Write the service file (0600). Raises configdata.ConfigDataError naming the key path
    (e.g. `BuilderApp.foo`) of a value the service cannot be given: a callable, an object,
    bytes, a non-string key. Called from jupyterhub_config.py, so the hub refuses to start."""
    data = {"ticket_secret": ticket_secret, "config": configdata.to_data(config, "")}
    write_private(path, json.dumps(data, indent=1, allow_nan=False))


def service_file_of(service: dict[str, Any]) -> Path | None:
    """The service file of a service entry made by `setup`, or None (an older entry)."""
    value = (service.get("environment") or {}).get(SERVICE_FILE_ENV)
    return Path(value) if value else None


def update_service_config(service: dict[str, Any], section: str, values: dict[str, Any]) -> None:
    """Add `values` to one config section the service reads (e.g. `FancyEnvSharing`)."""
    path = service_file_of(service)
    env = service.setdefault("environment", {})
    if path is None:  # a hand-made entry: config in the environment (holds no secret)
        config = configdata.loads(env.get(CONFIG_ENV, "{}"))
        config.setdefault(section, {}).update(values)
        env[CONFIG_ENV] = configdata.dumps(config)
        return
    data = read_service_file(path)
    config = data.get("config") or {}
    config.setdefault(section, {}).update(values)
    write_service_file(path, str(data.get("ticket_secret") or ""), config)


def _names_registry(image_prefix: str) -> bool:
    """`127.0.0.1:5000/x/` or `ghcr.io/o/` (pushed to a registry), not `fancy-env/`."""
    host = image_prefix.split("/", 1)[0]
    return "." in host or ":" in host or host == "localhost"


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
    executor: str | type = "docker",
    image_prefix: str = "fancy-env/",
    allow_loopback_repos: bool = False,
    grant_to_all_users: bool = True,
    builder_config: dict[str, dict[str, Any]] | None = None,
    registry_credentials_file: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Register the build service and point the spawners at it; returns the service entry.

    `executor`: BuilderApp.executor_class, a name (`docker`, `kubernetes`, `fake`), an
    import string or the class (handed over as its import string).
    `builder_config` holds extra build-service config by class, e.g.
    `{"BuilderApp": {"max_concurrent_builds": 4}, "DockerExecutor": {"user_id": 1000}}`.
    `allow_loopback_repos` lets users build from http://127.0.0.1 (tests, demos only).
    `registry_credentials_file`: the path (never the secret: the hub stores the service's
    environment in its database) of the Docker config JSON with the registry's credentials,
    for an `image_prefix` that names a registry; default $FANCY_ENV_REGISTRY_AUTH.
    """
    state = private_dir(Path(state_dir or Path.cwd() / "fancy-env-builder").resolve())
    ticket_secret = _secret(state, "ticket_secret")
    api_token = secrets.token_hex(32)
    base_url = str(_get(c.JupyterHub, "base_url", "/")).rstrip("/") + "/"
    prefix = f"{base_url}services/{name}/"

    config = _service_config(
        executor, image_prefix, allow_loopback_repos, builder_config, registry_credentials_file
    )
    service_file = state / SERVICE_FILE
    write_service_file(service_file, ticket_secret, config)
    service = _service_entry(name, port, state, api_token, service_file)
    services = [s for s in _get(c.JupyterHub, "services", []) if s.get("name") != name]
    c.JupyterHub.services = [*services, service]

    _define_scopes(c, name, grant_to_all_users)
    api_url = f"http://127.0.0.1:{port}{prefix}"
    spawner = c.FancySpawnerMixin
    spawner.builder_url = prefix
    spawner.builder_api_url = api_url
    spawner.builder_api_token = api_token
    spawner.ticket_secret = ticket_secret
    spawner.image_prefix = image_prefix
    spawner.build_confirmer = HTTPBuildConfirmer(api_url, api_token, image_prefix)
    return service


def _service_config(
    executor: str | type,
    image_prefix: str,
    allow_loopback_repos: bool,
    builder_config: dict[str, dict[str, Any]] | None,
    registry_credentials_file: str | os.PathLike[str] | None,
) -> dict[str, dict[str, Any]]:
    """The build service's config by class, as it goes into the service file."""
    if isinstance(executor, type):  # the service imports it again
        executor = f"{executor.__module__}:{executor.__qualname__}"
    app_config: dict[str, Any] = {"executor_class": executor, "image_prefix": image_prefix}
    credentials = registry_credentials_file or os.environ.get("FANCY_ENV_REGISTRY_AUTH", "")
    if credentials and _names_registry(image_prefix):
        app_config["registry_credentials_file"] = str(Path(credentials).resolve())
    if allow_loopback_repos:
        app_config["allowed_http_hosts"] = LOOPBACK_HOSTS
        app_config["allowed_private_hosts"] = LOOPBACK_HOSTS
    config: dict[str, dict[str, Any]] = {"BuilderApp": app_config}
    for section, values in (builder_config or {}).items():
        config.setdefault(section, {}).update(values)
    return config


def _define_scopes(c: Any, name: str, grant_to_all_users: bool) -> None:
    """The custom scopes, the users' grant (unless turned off) and the service's own role."""
    custom = dict(_get(c.JupyterHub, "custom_scopes", {}))
    custom[BUILD_SCOPE] = {"description": "Build images from Git repositories with fancy-env."}
    custom[ADMIN_SCOPE] = {"description": "See and cancel every user's fancy-env builds."}
    c.JupyterHub.custom_scopes = custom
    if grant_to_all_users:
        _grant_user_scopes(c, [BUILD_SCOPE, f"access:services!service={name}"])
    _grant_service_scopes(c, name, RETENTION_SCOPES)


def _service_entry(
    name: str, port: int, state: Path, api_token: str, service_file: Path
) -> dict[str, Any]:
    package_root = str(Path(__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    return {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "fancy_env.service"],
        "cwd": str(state),
        "api_token": api_token,
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [BUILD_SCOPE, ADMIN_SCOPE],
        "display": False,
        # stored in plain text in the hub's database: paths only, no secret
        "environment": {SERVICE_FILE_ENV: str(service_file), "PYTHONPATH": pythonpath},
    }
