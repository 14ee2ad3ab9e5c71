"""FancySpawnerMixin on FancyDockerSpawner, without Docker: seams, refusals, builds, config."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from traitlets.config import Config

from fancy_env.buildref import BuildRefError, ConfirmedBuild
from fancy_env.profiles import ProfileConfigError
from fancy_env.spawner_base import OptionsRefused, check_config
from fancy_env.spawner_docker import FancyDockerSpawner

PREFIX = "127.0.0.1:5000/fancy-env/"
PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Small",
        "slug": "small",
        "kubespawner_override": {"mem_limit": "1G", "environment": {"SIZE": "small"}},
        "profile_options": {
            "image": {
                "choices": {
                    "base": {"kubespawner_override": {"image": "fancy-env/singleuser:latest"}},
                    "gpu": {
                        "allowed_groups": ["gpu-users"],
                        "kubespawner_override": {"image": "gpu:1"},
                    },
                },
            }
        },
    },
    {
        "display_name": "Repo",
        "slug": "repo",
        "repository_build": {
            "enabled": True,
            "allowed_repos": [r"http://127\.0\.0\.1:\d+/ok/.*"],
            "kubespawner_override": {"mem_limit": "3G"},
        },
    },
]


@dataclass
class FakeGroup:
    name: str


@dataclass
class FakeUser:
    name: str = "alice"
    groups: list[FakeGroup] = field(default_factory=list)


class FakeConfirmer:
    def __init__(self, image: str = PREFIX + "ok-repo:abc", repo: str = "") -> None:
        self.image = image
        self.repo = repo or "http://127.0.0.1:9/ok/repo.git"
        self.calls: list[tuple[str, str]] = []

    async def confirm(self, build_id: str, username: str) -> ConfirmedBuild:
        self.calls.append((build_id, username))
        if build_id == "unknown":
            raise BuildRefError("no such build", status=404)
        return ConfirmedBuild(build_id, self.repo, "main", "abc", self.image, username)


def spawner(profile_list: Any = None, groups: tuple[str, ...] = (), **traits: Any) -> Any:
    c = Config()
    c.FancyDockerSpawner.profile_list = PROFILES if profile_list is None else profile_list
    c.FancyDockerSpawner.image_prefix = PREFIX
    user = FakeUser(groups=[FakeGroup(g) for g in groups])
    s = FancyDockerSpawner(config=c, user=user, **traits)
    # the user's hub scopes (a real hub resolves roles: tests/integration/test_secrets_at_rest.py)
    s.fancy_user_scopes = lambda: frozenset({"custom:fancy-env:build"})
    return s


def test_form_seam_returns_kubespawner_user_options() -> None:
    s = spawner()
    options = s.run_options_from_form(  # synchronous for a static profile_list
        {"profile": ["small"], "profile-option-small--image": ["base"], "_xsrf": ["x"]}
    )
    assert options == {"profile": "small", "image": "base"}


def test_form_refusal_is_a_400_spawn_exception_with_the_reason() -> None:
    s = spawner()
    with pytest.raises(OptionsRefused) as info:
        s.run_options_from_form({"profile": ["small"], "profile-option-small--image": ["gpu"]})
    assert info.value.status_code == 400
    assert info.value.jupyterhub_message == (
        "profile-option-small--image: unknown choice 'gpu'. Allowed: base."
    )


def test_query_door_uses_the_same_validator() -> None:
    s = spawner()
    with pytest.raises(OptionsRefused, match="unknown profile"):
        s.options_from_query({"profile": ["nope"]})


async def test_load_user_options_applies_profile_then_choice() -> None:
    s = spawner(groups=("gpu-users",))
    s.user_options = {"profile": "small", "image": "gpu"}
    await s.load_user_options()
    assert (s.image, s.mem_limit, s.environment["SIZE"]) == ("gpu:1", 1024**3, "small")


@pytest.mark.parametrize(
    "user_options",
    [
        {"image": "evil:latest"},
        {"profile": "small", "image": "gpu"},  # hidden from alice
        {"cmd": ["sh"]},
        {"profile": "small", "kubespawner_override": {"image": "x"}},
    ],
)
async def test_rest_and_saved_options_refused(user_options: dict[str, Any]) -> None:
    s = spawner()
    s.user_options = user_options
    before = s.image
    with pytest.raises(OptionsRefused) as info:
        await s.load_user_options()
    assert info.value.status_code == 400
    assert s.image == before


async def test_build_refused_without_confirmer() -> None:
    s = spawner()
    s.user_options = {"profile": "repo", "build_id": "b1"}
    with pytest.raises(OptionsRefused, match="repository builds are not configured"):
        await s.load_user_options()


async def test_build_uses_confirmed_image_and_repository_override() -> None:
    confirmer = FakeConfirmer()
    s = spawner(build_confirmer=confirmer)
    s.user_options = {"profile": "repo", "build_id": "b1"}
    await s.load_user_options()
    assert s.image == PREFIX + "ok-repo:abc"
    assert s.mem_limit == 3 * 1024**3
    assert confirmer.calls == [("b1", "alice")]


@pytest.mark.parametrize(
    ("confirmer", "build_id", "status", "message"),
    [
        (FakeConfirmer(), "unknown", 404, "build_id: no such build"),
        (FakeConfirmer(image="docker.io/evil:1"), "b1", 400, "not from this hub's registry"),
        (FakeConfirmer(repo="http://127.0.0.1:9/other/x.git"), "b1", 400, "is not allowed"),
    ],
)
async def test_build_refusals(
    confirmer: FakeConfirmer, build_id: str, status: int, message: str
) -> None:
    s = spawner(build_confirmer=confirmer)
    s.user_options = {"profile": "repo", "build_id": build_id}
    with pytest.raises(OptionsRefused) as info:
        await s.load_user_options()
    assert info.value.status_code == status
    assert message in info.value.jupyterhub_message


async def test_build_refused_without_the_build_scope() -> None:
    """A crafted start with a build id, by a user who lacks custom:fancy-env:build."""
    confirmer = FakeConfirmer()
    s = spawner(build_confirmer=confirmer)
    s.fancy_user_scopes = lambda: frozenset({"self"})
    s.user_options = {"profile": "repo", "build_id": "b1"}
    with pytest.raises(OptionsRefused) as info:
        await s.load_user_options()
    assert info.value.status_code == 403
    assert "custom:fancy-env:build" in info.value.jupyterhub_message
    assert confirmer.calls == [] and s.fancy_build_rights() is None


async def test_callable_and_async_profile_list() -> None:
    async def profiles_for(spawner: Any) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        return [
            {
                "display_name": f"For {spawner.user.name}",
                "kubespawner_override": {"image": "fancy-env/singleuser:latest"},
            }
        ]

    s = spawner(profile_list=profiles_for)
    s.user_options = {"profile": "for-alice"}
    await s.load_user_options()
    assert s.image == "fancy-env/singleuser:latest"
    s2 = spawner(profile_list=lambda sp: [{"display_name": "Sync"}])
    assert [p.slug for p in await s2.fancy_profiles()] == ["sync"]


async def test_options_form_lists_only_visible_profiles() -> None:
    s = spawner()
    html = await s.get_options_form()
    assert 'value="small"' in html and 'value="repo"' in html
    assert "gpu" not in html
    assert await spawner(profile_list=[]).get_options_form() == ""


async def test_host_networking_defaults() -> None:
    s = spawner()
    assert (s.network_name, s.use_internal_ip, s.remove) == ("host", True, True)
    s.ip, s.port = "127.0.0.1", 43210
    assert await s.get_ip_and_port() == ("127.0.0.1", 43210)
    assert s.get_args()[-2:] == ["--ip=127.0.0.1", "--port=43210"]
    restored = spawner()
    restored.load_state(s.get_state())
    assert restored.port == 43210


# --- start-up check ----------------------------------------------------------------------


def hub_config(profile_list: Any, section: str = "DockerSpawner") -> Config:
    c = Config()
    c.JupyterHub.spawner_class = FancyDockerSpawner
    c[section].profile_list = profile_list
    return c


CONFIG_ERRORS = [
    (
        [
            {"display_name": "A"},
            {
                "display_name": "B",
                "profile_options": {"image": {"choices": {"py311": {"display_name": 3}}}},
            },
        ],
        "profile_list[1].profile_options.image.choices.py311.display_name",
    ),
    (
        [{"display_name": "A", "kubespawner_override": {"node_selector": {"a": "b"}}}],
        "profile_list[0].kubespawner_override.node_selector",
    ),
    (
        [{"display_name": "A", "kubespawner_override": {"mem_limit": "lots"}}],
        "profile_list[0].kubespawner_override.mem_limit",
    ),
]


@pytest.mark.parametrize(("profile_list", "path"), CONFIG_ERRORS)
def test_check_config_names_the_path(profile_list: Any, path: str) -> None:
    with pytest.raises(ProfileConfigError) as info:
        check_config(hub_config(profile_list))
    assert info.value.path == path


def test_check_config_section_precedence_and_warnings() -> None:
    c = hub_config([{"display_name": "Broken", "default": "yes"}])
    c.FancyDockerSpawner.profile_list = [
        {
            "display_name": "P",
            "profile_options": {
                "i": {"unlisted_choice": {"enabled": True, "validation_regex": "^a/"}}
            },
        }
    ]
    (warning,) = check_config(c)  # the subclass section wins over DockerSpawner's
    assert warning.startswith("profile_list[0].profile_options.i.unlisted_choice")


def test_check_config_ignores_other_spawners_and_callables() -> None:
    c = Config()
    c.JupyterHub.spawner_class = "localprocess"
    c.KubeSpawner.profile_list = "nonsense"
    assert check_config(c) == []
    assert check_config(hub_config(lambda s: "nonsense")) == []


def test_entry_points_name_our_spawners() -> None:
    from importlib.metadata import entry_points

    from fancy_env.spawner_kube import FancyKubeSpawner

    spawners = {ep.name: ep for ep in entry_points(group="jupyterhub.spawners")}
    assert spawners["fancy-docker"].load() is FancyDockerSpawner
    assert spawners["fancy-kube"].load() is FancyKubeSpawner


async def test_static_profile_list_parsed_once_per_value() -> None:
    s = spawner()
    first = await s.fancy_profiles()
    assert await s.fancy_profiles() is first
    s.profile_list = [{"display_name": "Replaced"}]  # e.g. JupyterHub group_overrides
    assert [p.slug for p in await s.fancy_profiles()] == ["replaced"]


def test_check_config_warns_about_unknown_kubespawner_keys() -> None:
    from fancy_env.spawner_kube import FancyKubeSpawner

    c = Config()
    c.JupyterHub.spawner_class = FancyKubeSpawner
    c.KubeSpawner.profile_list = [
        {"display_name": "A", "kubespawner_override": {"mem_limit": "1G", "mem_limt": "2G"}}
    ]
    assert check_config(c) == [
        "profile_list[0].kubespawner_override.mem_limt: 'mem_limt' is not a FancyKubeSpawner "
        "setting; it has no effect (a typo?)."
    ]
