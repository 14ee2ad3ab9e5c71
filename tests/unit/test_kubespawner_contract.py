"""KubeSpawner 7.1's own contract, held by FancyKubeSpawner (and FancyDockerSpawner).

Code written against KubeSpawner's API does

    spawner.user_options = spawner.options_from_form(formdata)
    await spawner.load_user_options()   # ValueError for a bad choice or a failing regex

For every example of KubeSpawner's `profile_list` documentation (tests/support/
kubespawner_examples.py) and form data its form posts, ours returns the same dict,
synchronously, and builds the same pod; bad input raises a ValueError (ours still carries
the 400 and the message naming the field). No API server exists here: a dummy KUBECONFIG
(tests/unit/test_kube_manifest.py) lets both spawners be built inside async tests.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from tests.support.kubespawner_examples import DOC_DICT_EXAMPLE, DOC_LIST_EXAMPLE, Z2JH_EXAMPLE
from tests.unit.test_kube_manifest import kubeconfig  # noqa: F401 - fixture

EXAMPLES: dict[str, Any] = {
    "list": DOC_LIST_EXAMPLE,
    "dict": DOC_DICT_EXAMPLE,
    "z2jh": Z2JH_EXAMPLE,
}
GOOD_IMAGE = "jupyter/scipy-notebook:2024-03-14"


def _profiles(example: Any) -> list[dict[str, Any]]:
    return list(example.values()) if isinstance(example, dict) else list(example)


def _slug(profile: dict[str, Any]) -> str:
    from slugify import slugify  # what KubeSpawner uses for a profile without a slug

    return str(profile.get("slug") or slugify(profile["display_name"]))


def form_posts(example: Any) -> list[dict[str, list[str]]]:
    """What KubeSpawner's form posts for this profile_list: nothing, each profile alone, each
    choice, the free-text entry, and a whole form (every profile's fields and `_xsrf`)."""
    posts: list[dict[str, list[str]]] = [{}]
    whole: dict[str, list[str]] = {"_xsrf": ["x"]}
    for profile in _profiles(example):
        slug = _slug(profile)
        posts.append({"profile": [slug]})
        for name, option in profile.get("profile_options", {}).items():
            field = f"profile-option-{slug}--{name}"
            for choice in option.get("choices", {}):
                posts.append(
                    {"profile": [slug], field: [choice], f"{field}--unlisted-choice": [""]}
                )
                whole[field] = [choice]
            if option.get("unlisted_choice", {}).get("enabled"):
                posts.append(
                    {
                        "profile": [slug],
                        field: ["unlisted-choice"],
                        f"{field}--unlisted-choice": [GOOD_IMAGE],
                    }
                )
                posts.append({"profile": [slug], f"{field}--unlisted-choice": [GOOD_IMAGE]})
    for profile in _profiles(example):
        posts.append({**whole, "profile": [_slug(profile)]})
    return posts


CASES = [(name, i, post) for name, ex in EXAMPLES.items() for i, post in enumerate(form_posts(ex))]


def _config(example: Any) -> Config:
    c = Config()
    c.KubeSpawner.profile_list = example  # the admin's unchanged KubeSpawner config
    c.KubeSpawner.image = "quay.io/jupyter/base-notebook:latest"
    return c


def spawners(example: Any) -> tuple[Any, Any]:
    from kubespawner import KubeSpawner

    from fancy_env.spawner_kube import FancyKubeSpawner

    return KubeSpawner(_mock=True, config=_config(example)), FancyKubeSpawner(
        _mock=True, config=_config(example)
    )


async def _pod(spawner: Any) -> Any:
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    return spawner.api.api_client.sanitize_for_serialization(pod)


@pytest.mark.parametrize(("example", "n", "formdata"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
async def test_options_from_form_is_kubespawners(
    kubeconfig: Path,  # noqa: F811
    example: str,
    n: int,
    formdata: dict[str, list[str]],
) -> None:
    theirs, ours = spawners(EXAMPLES[example])
    expected = theirs.options_from_form(formdata)
    got = ours.options_from_form(formdata)
    assert not inspect.isawaitable(got)
    assert got == expected
    # JupyterHub's form door: the same dict, synchronously, once validated
    assert ours.run_options_from_form(formdata) == expected
    theirs.user_options, ours.user_options = expected, got
    assert await _pod(ours) == await _pod(theirs)


BAD = [
    # (example, form data, the field our message names, what it says)
    (
        "list",
        {"profile": ["demo-1"], "profile-option-demo-1--image": ["nope"]},
        "image",
        "unknown choice 'nope'. Allowed: base, minimal.",
    ),
    (
        "dict",
        {"profile": ["demo-1"], "profile-option-demo-1--image--unlisted-choice": ["evil/x:1"]},
        "image--unlisted-choice",
        "Must be an image matching ^jupyter/<name>:<tag>$",
    ),
    (
        "list",
        {"profile": ["demo-1"], "profile-option-demo-1--image--unlisted-choice": ["jupyter/x"]},
        "image--unlisted-choice",
        "'jupyter/x' is not allowed",
    ),
    (
        "z2jh",
        {"profile": ["gpu-server"], "profile-option-gpu-server--memory": ["huge"]},
        "memory",
        "unknown choice 'huge'. Allowed: small, large.",
    ),
    ("z2jh", {"profile": ["no-such-profile"]}, "profile", "unknown profile 'no-such-profile'"),
]


@pytest.mark.parametrize(("example", "formdata", "field", "says"), BAD)
async def test_bad_options_raise_value_error_from_load_user_options(
    kubeconfig: Path,  # noqa: F811
    example: str,
    formdata: dict[str, list[str]],
    field: str,
    says: str,
) -> None:
    from fancy_env.spawner_base import OptionsRefused

    theirs, ours = spawners(EXAMPLES[example])
    theirs.user_options = theirs.options_from_form(formdata)
    ours.user_options = ours.options_from_form(formdata)  # no validation yet, like theirs
    assert ours.user_options == theirs.user_options
    # KubeSpawner 7.1 raises a bare KeyError for an unknown choice (it never checks choices)
    with pytest.raises((ValueError, KeyError)):
        await theirs.load_user_options()
    with pytest.raises(ValueError) as info:
        await ours.load_user_options()
    assert isinstance(info.value, OptionsRefused) and info.value.status_code == 400
    assert info.value.jupyterhub_message.startswith(f"{field}: ")
    assert says in info.value.jupyterhub_message
    # the form door refuses before anything starts, naming the form field (re-render, 400)
    with pytest.raises(OptionsRefused) as door:
        ours.run_options_from_form(formdata)
    assert door.value.status_code == 400
    form_field = (
        field if field == "profile" else f"profile-option-{formdata['profile'][0]}--{field}"
    )
    assert door.value.jupyterhub_message.startswith(f"{form_field}: ")


async def test_kubespawner_regex_failure_is_a_value_error_in_both(
    kubeconfig: Path,  # noqa: F811
) -> None:
    """KubeSpawner's own case: a free text its (anchored) regex refuses."""
    formdata = {"profile": ["demo-1"], "profile-option-demo-1--image--unlisted-choice": ["x:1"]}
    for spawner in spawners(DOC_LIST_EXAMPLE):
        spawner.user_options = spawner.options_from_form(formdata)
        with pytest.raises(ValueError):
            await spawner.load_user_options()


async def test_callable_profile_list_keeps_kubespawners_sync_dict(
    kubeconfig: Path,  # noqa: F811
) -> None:
    from fancy_env.spawner_base import OptionsRefused

    async def profiles_for(spawner: Any) -> list[dict[str, Any]]:
        return DOC_LIST_EXAMPLE

    theirs, ours = spawners(profiles_for)
    good = {"profile": ["demo-1"], "profile-option-demo-1--image": ["base"]}
    assert ours.options_from_form(good) == theirs.options_from_form(good)
    # JupyterHub awaits the door (maybe_future): the profile list is computed then
    assert await ours.run_options_from_form(good) == {"profile": "demo-1", "image": "base"}
    bad = {"profile": ["demo-1"], "profile-option-demo-1--image": ["nope"]}
    with pytest.raises(OptionsRefused, match="profile-option-demo-1--image: unknown choice"):
        await ours.options_from_query(bad)
    ours.user_options = ours.options_from_form(bad)
    with pytest.raises(ValueError, match="unknown choice 'nope'"):
        await ours.load_user_options()


def _docker(example: Any) -> Any:
    from fancy_env.spawner_docker import FancyDockerSpawner

    class User:
        name = "alice"
        groups: list[str] = []

    c = Config()
    c.FancyDockerSpawner.profile_list = example
    return FancyDockerSpawner(config=c, user=User())


@pytest.mark.parametrize(("example", "formdata", "field", "says"), BAD[:3])
async def test_docker_spawner_holds_the_same_contract(
    example: str, formdata: dict[str, list[str]], field: str, says: str
) -> None:
    """FancyDockerSpawner: same sync dict, same ValueError (demo-2's GPU override is a
    Kubernetes setting, so only the first documented profile is used here)."""
    profiles = _profiles(EXAMPLES[example])[:1]
    spawner = _docker(profiles)
    good = {"profile": ["demo-1"], "profile-option-demo-1--image": ["base"]}
    assert spawner.options_from_form(good) == {"profile": "demo-1", "image": "base"}
    spawner.user_options = spawner.run_options_from_form(good)
    await spawner.load_user_options()
    assert spawner.image == "jupyter/base-notebook:latest"

    spawner = _docker(profiles)
    spawner.user_options = spawner.options_from_form(formdata)
    with pytest.raises(ValueError) as info:
        await spawner.load_user_options()
    assert info.value.status_code == 400  # type: ignore[attr-defined]
    message = info.value.jupyterhub_message  # type: ignore[attr-defined]
    assert message.startswith(f"{field}: ") and says in message
