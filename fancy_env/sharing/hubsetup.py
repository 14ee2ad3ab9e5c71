"""`enable_sharing(c, service)`: turn sharing on in `jupyterhub_config.py`, after
`service = fancy_env.setup(c, ...)`.

It adds to the build service's OAuth client the scopes it uses *on behalf of* the logged-in
user (so the hub applies that user's own permissions), grants users `shares!user` (JupyterHub's
default user role cannot share servers), and hands the service the options the link page needs
(the spawner's `profile_list`, parsed by the same model, without overrides, for the
recipient's permissions; named-server settings). Everything stays
plain config, changeable after the call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..hubconfig import update_service_config
from ..profiles import ProfileConfigError, parse_profile_list, service_profile_list
from ..spawner_base import _configured_spawner_class, configured_profile_list

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


def _spawner_profile_list(c: Any) -> tuple[str, Any]:
    """(where it was set, value) of the spawner's `profile_list`; (``, None) if unset.

    The configured spawner class's own sections first (traitlets rules, so a subclass
    defined in jupyterhub_config.py counts), else the first of SPAWNER_SECTIONS setting one."""
    cls: Any = _configured_spawner_class(c)
    if cls is not None and "profile_list" in cls.class_traits():
        for section in reversed(cls.section_names()):
            if section in c and "profile_list" in c[section]:
                return f"c.{section}.profile_list", configured_profile_list(c, cls)
    for section in SPAWNER_SECTIONS:
        if section in c and "profile_list" in c[section]:
            return f"c.{section}.profile_list", c[section]["profile_list"]
    return "", None


def _sharing_profiles(c: Any, profile_list: Any) -> dict[str, Any]:
    """The FancyEnvSharing profile options: the spawner's list parsed by the spawner's model
    (fancy_env.profiles: errors name the path and stop the hub), written back without
    overrides; or, for a callable list, `profile_list_is_callable` (the service then checks
    nothing itself and says so in its log; the spawner checks at launch)."""
    where, raw = (
        ("profile_list", profile_list) if profile_list is not None else (_spawner_profile_list(c))
    )
    if raw is None:
        return {}
    if callable(raw):
        return {"profile_list_is_callable": True, "profile_list": []}
    try:
        profiles = parse_profile_list(raw)
    except ProfileConfigError as e:
        raise ProfileConfigError(f"{where}{e.path[len('profile_list') :]}", e.message) from None
    return {"profile_list_is_callable": False, "profile_list": service_profile_list(profiles)}


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
    `profile_list` defaults to the spawner's (call this after setting it). It is parsed here
    by the spawner's own model (a mistake stops the hub, naming its path) and handed to the
    service without any `kubespawner_override`. A callable list stays the spawner's alone:
    the service is told (`profile_list_is_callable`), checks no profile itself and logs so.
    Every value goes through the strict serialiser (fancy_env.configdata): one it cannot
    carry stops the hub, naming its key path. Returns the FancyEnvSharing config.
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
    sharing.update(_sharing_profiles(c, profile_list))
    sharing.update(options or {})

    # into the service's 0600 file (fancy_env.hubconfig), never the hub's database
    update_service_config(service, "FancyEnvSharing", sharing)
    return sharing
