"""`enable_sharing(c, service)`: turn sharing on in `jupyterhub_config.py`, after
`service = fancy_env.setup(c, ...)`.

It adds to the build service's OAuth client the scopes it uses *on behalf of* the logged-in
user (so the hub applies that user's own permissions), grants users `shares!user` (JupyterHub's
default user role cannot share servers), and hands the service the options the link page needs
(`profile_list` for the recipient's permissions, named-server settings). Everything stays
plain config, changeable after the call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..hubconfig import update_service_config

#: Holds `home.html`, which extends the hub's own home page with the sharing links.
HUB_TEMPLATES = str(Path(__file__).parent / "hub_templates")

#: Scopes of the OAuth token the service receives for a logged-in user (intersected by the hub
#: with what that user may do).
OAUTH_SCOPES = [
    "read:users!user",  # the user's name, admin flag and groups
    "read:servers!user",  # which of the user's servers run ("already running" choices)
    "servers!user",  # start and stop the user's own servers (a link's Launch)
    "shares!user",  # create, list and revoke share codes of the user's servers
]
SHARE_SCOPE = "shares!user"
SPAWNER_SECTIONS = ("FancyDockerSpawner", "FancyKubeSpawner", "FancySpawnerMixin", "KubeSpawner")


def _get(config: Any, name: str, default: Any) -> Any:
    return config[name] if name in config else default


def _without_overrides(value: Any) -> Any:
    """The profile list without `kubespawner_override` (anywhere): the link page needs only
    slugs, choices, access lists and regexes — not images, volumes or environment values,
    which may hold secrets or callables."""
    if isinstance(value, dict):
        return {k: _without_overrides(v) for k, v in value.items() if k != "kubespawner_override"}
    if isinstance(value, list | tuple):
        return [_without_overrides(v) for v in value]
    return value


def _profile_list(c: Any) -> list[Any] | None:
    for section in SPAWNER_SECTIONS:
        if section in c and "profile_list" in c[section]:
            value = c[section]["profile_list"]
            return value if isinstance(value, list) else None
    return None


def _add_home_page_links(c: Any, service: dict[str, Any], share_servers: bool) -> None:
    """Link the sharing pages from the hub's home page, where users manage their servers.

    Uses the hub's `base_url` as set so far: call `enable_sharing` after setting it."""
    paths = list(_get(c.JupyterHub, "template_paths", []))
    if HUB_TEMPLATES not in paths:
        c.JupyterHub.template_paths = [*paths, HUB_TEMPLATES]
    base_url = str(_get(c.JupyterHub, "base_url", "/")).rstrip("/") + "/"
    links = {"url": f"{base_url}services/{service['name']}/", "share_servers": share_servers}
    template_vars = _get(c.JupyterHub, "template_vars", {})
    if callable(template_vars):
        # JupyterHub also accepts a callable (user -> dict): keep it, add our key
        def with_links(user: Any, _inner: Any = template_vars) -> dict[str, Any]:
            return {**_inner(user), "fancy_env_sharing": links}

        c.JupyterHub.template_vars = with_links
    else:
        c.JupyterHub.template_vars = {**dict(template_vars), "fancy_env_sharing": links}


def enable_sharing(
    c: Any,
    service: dict[str, Any],
    *,
    share_servers: bool = True,
    profile_list: list[Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn on environment links (and, with `share_servers`, the "Share this server" page).

    `options` are `FancyEnvSharing` traits, e.g. `{"allow_one_click_launch": True}`.
    `profile_list` defaults to the spawner's, when it is a plain list (not a callable).
    Returns the FancyEnvSharing config given to the service.
    """
    scopes = list(service.get("oauth_client_allowed_scopes", []))
    wanted = OAUTH_SCOPES if share_servers else [s for s in OAUTH_SCOPES if s != SHARE_SCOPE]
    service["oauth_client_allowed_scopes"] = scopes + [s for s in wanted if s not in scopes]
    if share_servers:
        extra = set(_get(c.JupyterHub, "extra_user_scopes", set()))
        c.JupyterHub.extra_user_scopes = extra | {SHARE_SCOPE}

    _add_home_page_links(c, service, share_servers)

    hub_paths = [str(p) for p in _get(c.JupyterHub, "template_paths", []) if p != HUB_TEMPLATES]
    sharing: dict[str, Any] = {
        "hub_template_paths": hub_paths,
        "allow_named_servers": bool(_get(c.JupyterHub, "allow_named_servers", False)),
        "named_server_limit_per_user": int(
            _get(c.JupyterHub, "named_server_limit_per_user", 0) or 0
        ),
    }
    profiles = profile_list if profile_list is not None else _profile_list(c)
    if profiles is not None:
        sharing["profile_list"] = _without_overrides(profiles)
    sharing.update(options or {})

    # into the service's 0600 file (fancy_env.hubconfig), never the hub's database
    update_service_config(service, "FancyEnvSharing", sharing)
    return sharing
