"""Property: whatever a user sends (form data or user_options, any keys, any values, any
groups), a start either is refused or yields a server whose image, command and overrides
come from the admin's config — never from the user."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from traitlets.config import Config

from fancy_env.overrides import apply_layers, override_layers
from fancy_env.profiles import parse_profile_list, visible_profiles
from fancy_env.validation import ValidationError, validate_form, validate_user_options

REGEX = "^jupyter/[a-z-]+:[a-z0-9.-]+$"
PREFIX = "127.0.0.1:5000/fancy-env/"
CONFIRMED = PREFIX + "repo:abc"
RAW: list[dict[str, Any]] = [
    {
        "display_name": "Small",
        "slug": "small",
        "kubespawner_override": {"environment": {"SIZE": "small"}, "default_url": "/lab"},
        "profile_options": {
            "image": {
                "choices": {
                    "base": {"kubespawner_override": {"image": "img/base:1"}},
                    "py311": {"kubespawner_override": {"image": "img/py:3.11"}},
                    "gpu": {
                        "allowed_groups": ["gpu"],
                        "kubespawner_override": {
                            "image": "img/gpu:1",
                            "extra_resource_limits": {"nvidia.com/gpu": "1"},
                        },
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": REGEX,
                    "kubespawner_override": {"image": "{value}"},
                },
            },
            "size": {
                "choices": {
                    "s": {"kubespawner_override": {"mem_limit": "1G"}},
                    "l": {"kubespawner_override": {"mem_limit": "8G"}},
                }
            },
        },
    },
    {
        "display_name": "Staff",
        "slug": "staff",
        "allowed_groups": ["staff"],
        "kubespawner_override": {"image": "img/staff:1"},
    },
    {
        "display_name": "Builds",
        "slug": "builds",
        "repository_build": {"enabled": True, "kubespawner_override": {"mem_limit": "4G"}},
    },
]
PROFILES = parse_profile_list(RAW)
CONFIG_KEYS = {"environment", "default_url", "image", "extra_resource_limits", "mem_limit"}
LISTED_IMAGES = {"img/base:1", "img/py:3.11", "img/gpu:1", "img/staff:1"}

WORDS = [
    "small",
    "staff",
    "builds",
    "nope",
    "base",
    "py311",
    "gpu",
    "s",
    "l",
    "xl",
    "unlisted-choice",
    "jupyter/scipy:2024",
    "jupyter/x:1\n",
    "evil/miner:1",
    "jupyter/a:b; rm -rf /",
    "b-1",
    "",
    "{value}",
    "img/gpu:1",
]
KEYS = [
    "profile",
    "image",
    "image--unlisted-choice",
    "size",
    "size--unlisted-choice",
    "build_id",
    "cmd",
    "args",
    "kubespawner_override",
    "environment",
    "mem_limit",
    "image_spec",
    "extra_resource_limits",
]
values = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=20),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.sampled_from(WORDS), max_size=2),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(WORDS), max_size=2),
)
plausible_st = st.fixed_dictionaries(
    {},
    optional={
        "profile": st.sampled_from(["small", "staff", "builds", "nope", ""]),
        "image": st.sampled_from(["base", "py311", "gpu", "unlisted-choice", "evil:1"]),
        "image--unlisted-choice": st.sampled_from(
            ["jupyter/scipy:2024", "evil/miner:1", "jupyter/x:1\n", ""]
        ),
        "size": st.sampled_from(["s", "l", "xl"]),
        "build_id": st.sampled_from(["b-1", "../x"]),
    },
)
user_options_st = st.one_of(
    plausible_st,
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), values, max_size=5),
)
groups_st = st.sets(st.sampled_from(["gpu", "staff", "other"]), max_size=3)
form_keys = st.one_of(
    st.sampled_from(["profile", "build_id", "_xsrf"]),
    st.builds(
        lambda slug, key: f"profile-option-{slug}--{key}",
        st.sampled_from(["small", "staff", "builds", "nope"]),
        st.sampled_from(KEYS),
    ),
)
formdata_st = st.dictionaries(
    form_keys, st.lists(st.sampled_from(WORDS), min_size=1, max_size=2), max_size=6
)


def assert_allowed(applied: dict[str, Any], slug: str, user: str, groups: set[str]) -> None:
    assert slug in {p.slug for p in visible_profiles(PROFILES, user, groups)}
    assert set(applied) <= CONFIG_KEYS
    image = applied.get("image")
    if image is not None:
        assert image in LISTED_IMAGES or image == CONFIRMED or re.fullmatch(REGEX, image)
        if image == "img/gpu:1":
            assert "gpu" in groups
        if image == CONFIRMED:
            assert slug == "builds"


def outcome(selection_or_error: Any, user: str, groups: set[str]) -> None:
    if isinstance(selection_or_error, ValidationError):
        assert selection_or_error.field and selection_or_error.message
        return
    selection = selection_or_error
    profile = next(p for p in PROFILES if p.slug == selection.profile)
    image = CONFIRMED if selection.build_id else None
    applied = apply_layers({}, override_layers(profile, selection, image))
    assert_allowed(applied, selection.profile, user, groups)


@settings(max_examples=400, deadline=None)
@given(user_options=user_options_st, groups=groups_st)
def test_random_user_options(user_options: dict[Any, Any], groups: set[str]) -> None:
    try:
        result: Any = validate_user_options(PROFILES, "u", groups, user_options)
    except ValidationError as e:
        result = e
    outcome(result, "u", groups)


@settings(max_examples=400, deadline=None)
@given(formdata=formdata_st, groups=groups_st)
def test_random_form_data(formdata: dict[str, list[str]], groups: set[str]) -> None:
    try:
        result: Any = validate_form(PROFILES, "u", groups, formdata)
    except ValidationError as e:
        result = e
    outcome(result, "u", groups)


# --- the same property through the real spawners ------------------------------------------


class _Confirmer:
    async def confirm(self, build_id: str, username: str) -> Any:
        from fancy_env.buildref import ConfirmedBuild

        return ConfirmedBuild(
            build_id, "http://127.0.0.1:1/r.git", "main", "abc", CONFIRMED, username
        )


def _docker_raw() -> list[dict[str, Any]]:
    """RAW with the Kubernetes-only key swapped for one Docker honours."""
    import copy

    raw = copy.deepcopy(RAW)
    gpu = raw[0]["profile_options"]["image"]["choices"]["gpu"]["kubespawner_override"]
    gpu["environment"] = {"GPU": "1"}
    del gpu["extra_resource_limits"]
    return raw


def _config(section: str) -> Config:
    c = Config()
    c[section].profile_list = RAW if section == "KubeSpawner" else _docker_raw()
    c[section].image = "img/config-default:1"
    c[section].cmd = ["jupyterhub-singleuser"]
    c[section].image_prefix = PREFIX
    c[section].build_confirmer = _Confirmer()
    return c


class _User:
    def __init__(self, groups: set[str]) -> None:
        self.name = "u"
        self.groups = sorted(groups)


@settings(max_examples=60, deadline=None)
@given(user_options=user_options_st, groups=groups_st)
def test_docker_container_settings(user_options: dict[Any, Any], groups: set[str]) -> None:
    from fancy_env.spawner_base import OptionsRefused
    from fancy_env.spawner_docker import FancyDockerSpawner

    spawner = FancyDockerSpawner(config=_config("FancyDockerSpawner"), user=_User(groups))
    # a user who may build (without the scope a build_id start is a 403: test_spawner_mixin)
    spawner.fancy_user_scopes = lambda: frozenset({"custom:fancy-env:build"})
    spawner.user_options = user_options
    try:
        asyncio.run(spawner.load_user_options())
    except OptionsRefused as e:
        assert e.status_code == 400
        assert spawner.image == "img/config-default:1"
        return
    assert spawner.cmd == ["jupyterhub-singleuser"]
    assert spawner.image in LISTED_IMAGES | {CONFIRMED, "img/config-default:1"} or re.fullmatch(
        REGEX, spawner.image
    )
    assert asyncio.run(spawner.check_allowed("evil:1")) == spawner.image


@pytest.fixture(scope="module")
def kube_loop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.unit.test_kube_manifest import DUMMY_KUBECONFIG

    path: Path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    path.write_text(DUMMY_KUBECONFIG)
    from kubernetes_asyncio.config import kube_config

    mp = pytest.MonkeyPatch()
    mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    loop = asyncio.new_event_loop()
    yield loop
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    mp.undo()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user_options=user_options_st, groups=groups_st)
def test_kube_pod_manifest(kube_loop: Any, user_options: dict[Any, Any], groups: set[str]) -> None:
    from fancy_env.spawner_base import OptionsRefused
    from fancy_env.spawner_kube import FancyKubeSpawner

    async def build() -> Any:
        spawner = FancyKubeSpawner(_mock=True, config=_config("KubeSpawner"))
        spawner.user = _User(groups)
        spawner.user.id, spawner.user.url = 1, "/user/u/"  # type: ignore[attr-defined]
        spawner.fancy_user_scopes = lambda: frozenset({"custom:fancy-env:build"})
        spawner.user_options = user_options
        try:
            await spawner.load_user_options()
        except OptionsRefused:
            return None
        return await spawner.get_pod_manifest()

    pod = kube_loop.run_until_complete(build())
    event("refused" if pod is None else "pod manifest built")
    if pod is None:
        return
    container = pod.spec.containers[0]
    image = container.image
    assert image in LISTED_IMAGES | {CONFIRMED, "img/config-default:1"} or re.fullmatch(
        REGEX, image
    )
    assert container.args[:1] == ["jupyterhub-singleuser"] or container.args is None
