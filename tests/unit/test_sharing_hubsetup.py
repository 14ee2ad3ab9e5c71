"""enable_sharing(c, service): the config it writes (pure: a traitlets Config, no hub)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from traitlets.config import Config

from fancy_env import configdata
from fancy_env.profiles import ProfileConfigError
from fancy_env.sharing.hubsetup import OAUTH_SCOPES, SHARE_SCOPE, enable_sharing

PROFILES = [{"display_name": "Small", "slug": "small"}]
#: what the service is given for PROFILES: the spawner's model, written back (no overrides)
SERVICE_PROFILES = [{"display_name": "Small", "slug": "small", "default": True}]


def service() -> dict[str, Any]:
    return {
        "name": "fancy-env",
        "oauth_client_allowed_scopes": ["custom:fancy-env:build"],
        "environment": {"FANCY_ENV_BUILDER_CONFIG": json.dumps({"BuilderApp": {"x": 1}})},
    }


def sharing_config(svc: dict[str, Any]) -> dict[str, Any]:
    return dict(configdata.loads(svc["environment"]["FANCY_ENV_BUILDER_CONFIG"])["FancyEnvSharing"])


@pytest.mark.parametrize(
    ("setup", "kwargs", "expect"),
    [
        ({}, {}, {"allow_named_servers": False, "named_server_limit_per_user": 0}),
        (
            {"JupyterHub": {"allow_named_servers": True, "named_server_limit_per_user": 3}},
            {},
            {"allow_named_servers": True, "named_server_limit_per_user": 3},
        ),
        (
            {"FancyDockerSpawner": {"profile_list": PROFILES}},
            {},
            {"profile_list": SERVICE_PROFILES},
        ),
        ({"KubeSpawner": {"profile_list": PROFILES}}, {}, {"profile_list": SERVICE_PROFILES}),
        ({}, {"profile_list": PROFILES}, {"profile_list": SERVICE_PROFILES}),
        # a tuple, or a dict of profiles (KubeSpawner sorts it by key), like the spawner
        ({}, {"profile_list": tuple(PROFILES)}, {"profile_list": SERVICE_PROFILES}),
        ({}, {"profile_list": {"k": PROFILES[0]}}, {"profile_list": SERVICE_PROFILES}),
        ({}, {"options": {"allow_one_click_launch": True}}, {"allow_one_click_launch": True}),
        # the hub's template paths (for the page.html the sharing pages extend), not ours
        ({}, {}, {"hub_template_paths": []}),
        (
            {"JupyterHub": {"template_paths": ["/srv/hub-templates"]}},
            {},
            {"hub_template_paths": ["/srv/hub-templates"]},
        ),
    ],
)
def test_sharing_options(
    setup: dict[str, Any], kwargs: dict[str, Any], expect: dict[str, Any]
) -> None:
    c = Config(setup)
    svc = service()
    enable_sharing(c, svc, **kwargs)
    got = sharing_config(svc)
    for key, value in expect.items():
        assert got[key] == value, key
    builder = configdata.loads(svc["environment"]["FANCY_ENV_BUILDER_CONFIG"])["BuilderApp"]
    assert builder == {"x": 1}  # the build service's own config is kept


def test_callable_profile_list_is_said_not_dropped() -> None:
    """A callable list stays the spawner's: the service is told so (and logs it)."""
    c = Config({"FancyKubeSpawner": {"profile_list": lambda spawner: PROFILES}})
    svc = service()
    enable_sharing(c, svc)
    got = sharing_config(svc)
    assert got["profile_list_is_callable"] is True and got["profile_list"] == []


def test_set_in_allowed_groups_travels_as_a_set() -> None:
    profiles = [{"display_name": "Staff", "slug": "staff", "allowed_groups": {"staff"},
                 "allowed_users": ("ann",)}]  # fmt: skip
    svc = service()
    enable_sharing(Config({"KubeSpawner": {"profile_list": profiles}}), svc)
    got = sharing_config(svc)["profile_list"][0]
    assert got["allowed_groups"] == {"staff"} and got["allowed_users"] == {"ann"}


@pytest.mark.parametrize(
    ("profiles", "path"),
    [
        ("not-a-list", "c.FancyKubeSpawner.profile_list"),
        ([{"display_name": 3}], "c.FancyKubeSpawner.profile_list[0].display_name"),
        ([{"display_name": "A", "allowed_groups": [b"staff"]}],
         "c.FancyKubeSpawner.profile_list[0].allowed_groups[0]"),
    ],
)  # fmt: skip
def test_bad_profile_list_stops_the_hub_naming_the_path(profiles: Any, path: str) -> None:
    with pytest.raises(ProfileConfigError) as e:
        enable_sharing(Config({"FancyKubeSpawner": {"profile_list": profiles}}), service())
    assert e.value.path == path


def test_bad_option_stops_the_hub_naming_the_path() -> None:
    with pytest.raises(configdata.ConfigDataError) as e:
        enable_sharing(Config(), service(), options={"stop_timeout": object()})
    assert e.value.path == "FancyEnvSharing.stop_timeout"


@pytest.mark.parametrize("share_servers", [True, False])
def test_scopes(share_servers: bool) -> None:
    c = Config()
    c.JupyterHub.extra_user_scopes = {"custom:fancy-env:build"}
    svc = service()
    enable_sharing(c, svc, share_servers=share_servers)
    scopes = svc["oauth_client_allowed_scopes"]
    assert scopes[0] == "custom:fancy-env:build"
    assert set(OAUTH_SCOPES) - {SHARE_SCOPE} <= set(scopes)
    assert (SHARE_SCOPE in scopes) is share_servers
    assert (SHARE_SCOPE in c.JupyterHub.extra_user_scopes) is share_servers
    assert "custom:fancy-env:build" in c.JupyterHub.extra_user_scopes
    enable_sharing(c, svc, share_servers=share_servers)  # idempotent
    assert len(svc["oauth_client_allowed_scopes"]) == len(scopes)


def test_overrides_never_reach_the_service() -> None:
    profiles = [{
        "display_name": "Small", "slug": "small",
        "kubespawner_override": {"environment": {"TOKEN": "secret"}, "cmd": lambda s: "x"},
        "repository_build": {"enabled": True, "kubespawner_override": {"mem_limit": "2G"}},
        "profile_options": {"image": {"display_name": "Image", "choices": {
            "a": {"display_name": "A", "kubespawner_override": {"image": "a:1"}}}}},
    }]  # fmt: skip
    svc = service()
    enable_sharing(Config({"FancyKubeSpawner": {"profile_list": profiles}}), svc)
    text = svc["environment"]["FANCY_ENV_BUILDER_CONFIG"]
    assert "secret" not in text and "a:1" not in text and "kubespawner_override" not in text
    got = sharing_config(svc)["profile_list"][0]
    assert got["repository_build"] == {"enabled": True}
    assert got["profile_options"]["image"]["choices"]["a"] == {"display_name": "A", "default": True}


def test_sharing_options_go_to_the_service_file(tmp_path: Any) -> None:
    """With `fancy_env.setup(c)`, sharing options join the 0600 service file, not the
    service's environment (which the hub stores in its database)."""
    import stat

    import fancy_env

    c = Config({"FancyDockerSpawner": {"profile_list": PROFILES}})
    svc = fancy_env.setup(c, state_dir=tmp_path)
    enable_sharing(c, svc, options={"allow_one_click_launch": True})
    path = tmp_path / "service.json"
    stored = configdata.loads(path.read_text())
    assert stored["config"]["FancyEnvSharing"]["profile_list"] == SERVICE_PROFILES
    assert stored["config"]["BuilderApp"]["executor_class"] == "docker"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "FANCY_ENV_BUILDER_CONFIG" not in svc["environment"]


@pytest.mark.parametrize(
    ("hub", "share_servers", "url"),
    [
        ({}, True, "/services/fancy-env/"),
        ({"base_url": "/jh"}, True, "/jh/services/fancy-env/"),
        ({"base_url": "/jh/"}, False, "/jh/services/fancy-env/"),
    ],
)
def test_home_page_links(hub: dict[str, Any], share_servers: bool, url: str) -> None:
    c = Config({"JupyterHub": {**hub, "template_vars": {"org": "x"}}})
    enable_sharing(c, service(), share_servers=share_servers)
    assert c.JupyterHub.template_paths[-1].endswith("hub_templates")
    assert c.JupyterHub.template_vars == {
        "org": "x",
        "fancy_env_sharing": {"url": url, "share_servers": share_servers},
    }


def test_home_page_links_keep_a_callable_template_vars() -> None:
    c = Config()
    c.JupyterHub.template_paths = ["/mine"]
    c.JupyterHub.template_vars = lambda user: {"who": user}
    enable_sharing(c, service())
    assert c.JupyterHub.template_paths[0] == "/mine"  # the admin's own templates still win
    assert c.JupyterHub.template_vars("alice") == {
        "who": "alice",
        "fancy_env_sharing": {"url": "/services/fancy-env/", "share_servers": True},
    }


def test_service_says_it_checks_nothing_for_a_callable_list(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fancy_env.sharing.config import FancyEnvSharing

    c = Config({"FancyKubeSpawner": {"profile_list": lambda spawner: PROFILES}})
    svc = service()
    enable_sharing(c, svc)
    sharing = FancyEnvSharing(config=Config({"FancyEnvSharing": sharing_config(svc)}))
    with caplog.at_level("WARNING"):
        assert sharing.profiles() == ()
    assert "profile_list is a callable" in caplog.text
    assert "checks no profile" in caplog.text
