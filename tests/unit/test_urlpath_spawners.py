"""`urlpath`/`labpath` in user_options: the validator's table, and this start's `default_url` on
Kubernetes (a real `get_pod_manifest()`; no API server exists here, see test_kube_manifest) and
Docker (the environment FancyDockerSpawner gives the container). A real Docker start is in
tests/e2e/test_open_file.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from fancy_env.profiles import parse_profile_list
from fancy_env.spawner_base import OptionsRefused
from fancy_env.validation import (
    ValidationError,
    user_options_from_form,
    validate_form,
    validate_user_options,
)
from tests.unit.test_kube_manifest import kubeconfig  # noqa: F401 - fixture

PROFILES: list[dict[str, Any]] = [
    {"display_name": "Lab", "slug": "lab", "default": True},
    {
        "display_name": "Classic",
        "slug": "classic",
        "kubespawner_override": {"default_url": "/tree"},
    },
]
PARSED = parse_profile_list(PROFILES)


@pytest.mark.parametrize(
    ("user_options", "urlpath"),
    [
        ({"urlpath": "lab/tree/notebooks/intro.ipynb"}, "lab/tree/notebooks/intro.ipynb"),
        ({"profile": "lab", "labpath": "notebooks/intro.ipynb"}, "lab/tree/notebooks/intro.ipynb"),
        ({"urlpath": "tree/a b.ipynb"}, "tree/a%20b.ipynb"),
        ({"urlpath": ""}, ""),
        ({}, ""),
    ],
)
def test_validator_normalises(user_options: dict[str, str], urlpath: str) -> None:
    selection = validate_user_options(PARSED, "bob", [], user_options)
    assert selection.urlpath == urlpath
    assert selection.to_user_options().get("urlpath", "") == urlpath


@pytest.mark.parametrize(
    ("user_options", "field"),
    [
        ({"urlpath": "../../hub/admin"}, "urlpath"),
        ({"urlpath": "%2e%2e/x"}, "urlpath"),
        ({"urlpath": "/etc/passwd"}, "urlpath"),
        ({"urlpath": "https://evil.example/x"}, "urlpath"),
        ({"profile": "lab", "labpath": "../x"}, "labpath"),
        ({"urlpath": 3}, "urlpath"),
    ],
)
def test_validator_refuses_naming_the_field(user_options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        validate_user_options(PARSED, "bob", [], user_options)
    assert err.value.field == field
    assert err.value.text.startswith(f"{field}: ")


def test_no_profiles_still_opens_a_file() -> None:
    assert validate_user_options((), "bob", [], {"urlpath": "lab"}).urlpath == "lab"
    with pytest.raises(ValidationError, match="no profiles"):
        validate_user_options((), "bob", [], {"urlpath": "lab", "image": "x"})


def test_form_field_carries_it() -> None:
    formdata = {"profile": ["lab"], "urlpath": ["lab/tree/x.ipynb"], "_xsrf": ["t"]}
    assert user_options_from_form(formdata) == {"profile": "lab", "urlpath": "lab/tree/x.ipynb"}
    with pytest.raises(ValidationError) as err:
        validate_form(PARSED, "bob", [], {"profile": ["lab"], "urlpath": ["../x"]})
    assert err.value.field == "urlpath"  # the form's own field name, not a profile-option one


class Orm:
    server = None
    name = ""

    def __init__(self, options: dict[str, Any]) -> None:
        self.user_options = options


class DB:
    commits = 0

    def commit(self) -> None:
        self.commits += 1


async def _kube_pod(spawner: Any, user_options: dict[str, Any]) -> dict[str, Any]:
    spawner.user_options = user_options
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    return dict(spawner.api.api_client.sanitize_for_serialization(pod))


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


async def test_kubernetes_pod_opens_it_for_this_start_only(kubeconfig: Path) -> None:  # noqa: F811
    from fancy_env.spawner_kube import FancyKubeSpawner

    c = Config()
    c.KubeSpawner.profile_list = PROFILES
    c.KubeSpawner.image = "quay.io/jupyter/base-notebook:latest"
    c.KubeSpawner.default_url = "/lab"
    spawner = FancyKubeSpawner(_mock=True, config=c)
    saved = {"profile": "lab", "urlpath": "lab/tree/notebooks/intro.ipynb"}
    spawner.orm_spawner, spawner.db = Orm(saved), DB()
    pod = await _kube_pod(spawner, saved)
    assert _env(pod)["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/notebooks/intro.ipynb"
    # the options JupyterHub saves for a restart without options no longer carry it
    assert spawner.orm_spawner.user_options == {"profile": "lab"}
    assert spawner.db.commits == 1
    # the next start on the same spawner object: the configured default again
    pod = await _kube_pod(spawner, {"profile": "lab"})
    assert _env(pod)["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    # an urlpath wins over the profile's own default_url, which then comes back
    pod = await _kube_pod(spawner, {"profile": "classic", "labpath": "x.ipynb"})
    assert _env(pod)["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/x.ipynb"
    pod = await _kube_pod(spawner, {"profile": "classic"})
    assert _env(pod)["JUPYTERHUB_DEFAULT_URL"] == "/tree"


async def test_kubernetes_refuses_traversal_before_any_pod(kubeconfig: Path) -> None:  # noqa: F811
    from fancy_env.spawner_kube import FancyKubeSpawner

    c = Config()
    c.KubeSpawner.profile_list = PROFILES
    spawner = FancyKubeSpawner(_mock=True, config=c)
    spawner.user_options = {"urlpath": "../../hub/admin"}
    with pytest.raises(OptionsRefused) as err:
        await spawner.load_user_options()
    assert err.value.status_code == 400
    assert err.value.jupyterhub_message.startswith("urlpath: must not contain '.'")


async def test_docker_container_env_opens_it() -> None:
    from fancy_env.spawner_docker import FancyDockerSpawner

    class User:
        name = "bob"
        groups: list[str] = []
        url = "/user/bob/"

    c = Config()
    c.FancyDockerSpawner.profile_list = PROFILES[:1]
    from jupyterhub.objects import Hub

    spawner = FancyDockerSpawner(config=c, user=User(), hub=Hub())
    spawner.user_options = {"urlpath": "doc/tree/x.ipynb"}
    await spawner.load_user_options()
    assert spawner.default_url == "/doc/tree/x.ipynb"
    assert spawner.get_env()["JUPYTERHUB_DEFAULT_URL"] == "/doc/tree/x.ipynb"
    spawner.user_options = {}
    await spawner.load_user_options()
    assert spawner.default_url == ""
    assert "JUPYTERHUB_DEFAULT_URL" not in spawner.get_env()
