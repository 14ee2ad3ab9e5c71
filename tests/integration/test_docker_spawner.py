"""A real JupyterHub with FancyDockerSpawner on a real Docker engine.

Two profiles use the same local image with different environment and memory, so the choice
is observable on the container. Containers run with host networking and listen on a random
127.0.0.1 port; the hub (through configurable-http-proxy) reaches them there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.hub import HubProcess

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SPAWNER = "fancy-docker"  # the jupyterhub.spawners entry point (package installed by scripts)
# the hub runs in its own directory: make the checkout importable even when not installed
REPO = Path(__file__).resolve().parents[2]
HUB_ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def profile_list(image: str) -> list[dict[str, Any]]:
    return [
        {
            "display_name": "Small",
            "slug": "small",
            "default": True,
            "kubespawner_override": {
                "image": image,
                "mem_limit": "512M",
                "environment": {"FANCY_PROFILE": "small"},
            },
            "profile_options": {
                "tag": {
                    "choices": {"latest": {}},
                    # a prefix regex: the hub warns at start-up (fullmatch vs re.match)
                    "unlisted_choice": {"enabled": True, "validation_regex": "^v"},
                }
            },
        },
        {
            "display_name": "Large",
            "slug": "large",
            "kubespawner_override": {
                "image": image,
                "mem_limit": "1G",
                "environment": {"FANCY_PROFILE": "large"},
            },
            "profile_options": {
                "flavour": {
                    "display_name": "Flavour",
                    "choices": {
                        "vanilla": {"kubespawner_override": {"environment": {"FLAVOUR": "v"}}},
                        "mint": {"kubespawner_override": {"environment": {"FLAVOUR": "mint"}}},
                    },
                }
            },
        },
    ]


def hub_config(prefix: str, profiles: Any) -> str:
    return f"""
c.JupyterHub.spawner_class = {SPAWNER!r}
c.DockerSpawner.prefix = {prefix!r}
c.DockerSpawner.pull_policy = "never"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.FancyDockerSpawner.profile_list = {profiles!r}
"""


def docker(*args: str) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return out.stdout


def remove_containers(prefix: str) -> None:
    ids = docker("ps", "-aq", "--filter", f"name=^{prefix}-").split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    """A container-name prefix unique to this module; its containers are removed afterwards."""
    value = "fancytest" + secrets.token_hex(3)
    yield value
    remove_containers(value)


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: str, prefix: str
) -> Iterator[HubProcess]:
    """One hub for the module's running-hub tests (each uses its own user)."""
    config = hub_config(prefix, profile_list(docker_engine))
    process = HubProcess(tmp_path_factory.mktemp("docker-hub"), config=config, env=HUB_ENV)
    process.start()
    yield process
    process.stop()


def wait_ready(hub: HubProcess, user: str, timeout: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = hub.api("GET", f"/users/{user}").json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return server  # type: ignore[no-any-return]
        if not model.get("pending") and not server:
            raise AssertionError(f"server for {user} stopped:\n{hub.tail()}")
        time.sleep(0.5)
    raise AssertionError(f"server for {user} not ready:\n{hub.tail()}")


def spawn_form(
    hub: HubProcess, session: requests.Session, data: dict[str, str], query: str = ""
) -> requests.Response:
    session.get(hub.url + "hub/spawn", timeout=30)
    xsrf = session.cookies.get("_xsrf", "")
    return session.post(
        hub.url + "hub/spawn" + query,
        data={**data, "_xsrf": xsrf},
        timeout=60,
        allow_redirects=False,
    )


def test_form_post_starts_the_chosen_profile(hub: HubProcess, prefix: str) -> None:
    session = hub.login("alice")
    form = session.get(hub.url + "hub/spawn", timeout=30)
    assert form.status_code == 200 and 'value="large"' in form.text

    r = spawn_form(
        hub,
        session,
        {
            "profile": "large",
            "profile-option-large--flavour": "mint",
            "profile-option-small--junk": "ignored",
        },
    )
    assert r.status_code == 302, r.text[-2000:]
    wait_ready(hub, "alice")

    (container_id,) = docker("ps", "-q", "--filter", f"name=^{prefix}-alice").split()
    info = json.loads(docker("inspect", container_id))[0]
    env = dict(line.split("=", 1) for line in info["Config"]["Env"])
    assert (env["FANCY_PROFILE"], env["FLAVOUR"]) == ("large", "mint")
    assert info["HostConfig"]["Memory"] == 1024**3
    assert info["HostConfig"]["NetworkMode"] == "host"

    service_url = env["JUPYTERHUB_SERVICE_URL"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/user/alice/", service_url), service_url
    direct = requests.get(service_url + "api", timeout=30)  # listening on loopback
    assert direct.status_code == 200 and "version" in direct.json()
    # the hub's proxy reaches the server on loopback
    token = hub.user_token("alice")
    status = requests.get(
        hub.url + "user/alice/api/status", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert status.status_code == 200, status.text

    saved = hub.api("GET", "/users/alice").json()["servers"][""]["user_options"]
    assert saved == {"profile": "large", "flavour": "mint"}

    stop(hub, "alice")

    # the fourth door: a restart with the saved options (REST start with an empty body)
    assert hub.api("POST", "/users/alice/server").status_code in (201, 202)
    wait_ready(hub, "alice")
    assert container_env(prefix, "alice")["FLAVOUR"] == "mint"
    stop(hub, "alice")

    # saved options are validated again: tampered ones are refused on restart
    tampered = {"user_options": {"profile": "large", "flavour": "chocolate"}}
    assert hub.api("PATCH", "/users/alice/servers/", json=tampered).status_code == 200
    r = hub.api("POST", "/users/alice/server")
    assert r.status_code == 400
    assert "flavour: unknown choice 'chocolate'" in r.json()["message"]


def container_env(prefix: str, user: str) -> dict[str, str]:
    (container_id,) = docker("ps", "-q", "--filter", f"name=^{prefix}-{user}").split()
    info = json.loads(docker("inspect", container_id))[0]
    return dict(line.split("=", 1) for line in info["Config"]["Env"])


def stop(hub: HubProcess, user: str, timeout: float = 60) -> None:
    assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = hub.api("GET", f"/users/{user}").json()
        if not model["servers"] and not model.get("pending"):
            return
        time.sleep(0.3)
    raise AssertionError(f"server of {user} did not stop:\n{hub.tail()}")


def test_refused_form_post_rerenders_form_with_reason(hub: HubProcess) -> None:
    session = hub.login("bob")
    r = spawn_form(hub, session, {"profile": "large", "profile-option-large--flavour": "chocolate"})
    assert r.status_code == 400
    assert "unknown choice" in r.text and "chocolate" in r.text
    assert "Allowed: vanilla, mint." in r.text
    assert 'value="large"' in r.text  # the form is shown again
    assert hub.api("GET", "/users/bob").json()["servers"] == {}


def test_prefix_regex_warned_at_startup(hub: HubProcess) -> None:
    log = hub.log_path.read_text()
    assert (
        "profile_list[0].profile_options.tag.unlisted_choice.validation_regex: '^v' is "
        "not anchored at the end" in log
    )


def test_refused_query_link_rerenders_form(hub: HubProcess) -> None:
    session = hub.login("dora")
    r = session.get(hub.url + "hub/spawn?opt-profile=secret", timeout=30)
    assert r.status_code == 400
    assert "unknown profile" in r.text and "Allowed: small, large." in r.text


@pytest.mark.parametrize(
    ("user_options", "reason"),
    [
        ({"profile": "large", "flavour": "chocolate"}, "flavour: unknown choice 'chocolate'"),
        ({"image": "evil/miner:latest"}, "image: is not an option of profile 'small'"),
        ({"profile": "small", "cmd": ["sh", "-c", "id"]}, "cmd: is not an option"),
    ],
)
def test_rest_start_with_bad_user_options_is_a_400(
    hub: HubProcess, user_options: dict[str, Any], reason: str
) -> None:
    user = "carol" + secrets.token_hex(2)
    hub.api("POST", f"/users/{user}")
    r = hub.api("POST", f"/users/{user}/server", json={"user_options": user_options})
    assert r.status_code == 400, r.text
    assert reason in r.json()["message"]


def test_broken_profile_list_stops_the_hub_with_the_path(
    tmp_path: Any, docker_engine: str, prefix: str
) -> None:
    profiles = profile_list(docker_engine)
    profiles[1]["profile_options"]["flavour"]["choices"]["mint"]["kubespawner_override"] = [1]
    hub = HubProcess(tmp_path / "broken", config=hub_config(prefix, profiles), env=HUB_ENV)
    code, log = hub.run_to_exit(timeout=60)
    assert code == 1
    assert "Traceback" not in log
    assert (
        "profile_list[1].profile_options.flavour.choices.mint.kubespawner_override: "
        "must be a dict" in log
    ), log[-3000:]


def test_unhonoured_override_key_stops_the_hub(
    tmp_path: Any, docker_engine: str, prefix: str
) -> None:
    profiles = profile_list(docker_engine)
    profiles[0]["kubespawner_override"]["node_selector"] = {"disk": "ssd"}
    hub = HubProcess(tmp_path / "unhonoured", config=hub_config(prefix, profiles), env=HUB_ENV)
    code, log = hub.run_to_exit(timeout=60)
    assert code != 0
    assert (
        "profile_list[0].kubespawner_override.node_selector: FancyDockerSpawner cannot "
        "honour 'node_selector'" in log
    ), log[-3000:]


def test_broken_profile_list_stops_a_kube_hub(tmp_path: Any) -> None:
    """Same start-up check for FancyKubeSpawner with an unchanged c.KubeSpawner.profile_list
    (no cluster needed: the hub exits before any spawner exists)."""
    config = """
c.JupyterHub.spawner_class = "fancy-kube"
c.KubeSpawner.profile_list = [
    {"display_name": "A"},
    {"display_name": "B", "profile_options": {"image": {"choices": {"py311": {
        "display_name": "Python", "kubespawner_override": "image=x"}}}}},
]
"""
    code, log = HubProcess(tmp_path / "kube", config=config, env=HUB_ENV).run_to_exit()
    assert code == 1
    assert (
        "fancy_env: invalid profile_list: profile_list[1].profile_options.image.choices.py311"
        ".kubespawner_override: must be a dict, not str" in log
    ), log[-3000:]
