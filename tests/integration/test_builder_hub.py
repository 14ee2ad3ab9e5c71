"""The build service under a real JupyterHub: `fancy_env.setup(c)`, tokens, scopes, and
FancyDockerSpawner starting a server only from a build the service confirms."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.builder import ROOT, parse_sse
from tests.support.gitserver import GitServer, dockerfile_repo_files
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for
from tests.support.registry import REGISTRY

pytestmark = [pytest.mark.docker, pytest.mark.slow]
PREFIX = f"{REGISTRY}/fancy-env-test/"  # credentials: $FANCY_ENV_REGISTRY_AUTH (conftest)


def hub_config(state: Path, image: str) -> str:
    return textwrap.dedent(f"""
    import fancy_env
    c.JupyterHub.spawner_class = "fancy_env.spawner_docker.FancyDockerSpawner"
    c.DockerSpawner.image = {image!r}
    c.DockerSpawner.remove = True
    c.DockerSpawner.prefix = "fancy-env-buildertest"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 60
    c.FancyDockerSpawner.profile_list = [{{
        "display_name": "From a repository", "slug": "repo", "default": True,
        "kubespawner_override": {{"image": {image!r}}},
        "repository_build": {{"enabled": True}},
    }}]
    fancy_env.setup(c, state_dir={str(state)!r}, port={free_port()}, executor="docker",
                    image_prefix={PREFIX!r}, allow_loopback_repos=True)
    """)


class Client:
    def __init__(self, hub: HubProcess, token: str) -> None:
        self.base = hub.url + "services/fancy-env/"
        self.headers = {"Authorization": f"token {token}"}

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=60, **kw)

    def events(self, build_id: str) -> list[dict[str, Any]]:
        with requests.get(self.base + f"api/builds/{build_id}/events", headers=self.headers,
                          stream=True, timeout=300) as r:  # fmt: skip
            r.raise_for_status()
            return [m["data"] for m in parse_sse(r.iter_lines(decode_unicode=True)) if "data" in m]


@pytest.fixture
def hub(hub_factory: Any, tmp_path: Path, docker_engine: str) -> HubProcess:
    hub: HubProcess = hub_factory(config=hub_config(tmp_path / "fe", docker_engine),
                                  base_url="/jh/", env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    wait_for(lambda: requests.get(hub.url + "services/fancy-env/health", timeout=2).ok,
             timeout=30, what="build service behind the hub")  # fmt: skip
    return hub


def test_hub_service_scopes_and_confirmed_spawn(
    hub: HubProcess, git_server: GitServer, docker_engine: str
) -> None:
    alice, bob = Client(hub, hub.user_token("alice")), Client(hub, hub.user_token("bob"))
    anonymous = requests.post(hub.url + "services/fancy-env/api/builds", json={}, timeout=10)
    assert anonymous.status_code == 403
    browser = hub.login("carol")  # HubOAuth: the API redirects a browser through the hub
    r = browser.get(hub.url + "services/fancy-env/api/builds", timeout=30,
                    headers={"Accept": "text/html,application/json"})  # fmt: skip
    assert r.status_code == 200, (r.status_code, r.url, r.text[:300])
    assert r.json() == {"builds": []}

    repo = git_server.create("hubenv", dockerfile_repo_files(docker_engine, "hub"))
    r = alice.request("POST", "api/builds", json={"repo": repo.url})
    assert r.status_code in (200, 202), r.text
    build = r.json()
    events = alice.events(build["id"])
    assert events[-1]["phase"] == "built", events[-5:]
    assert bob.request("DELETE", f"api/builds/{build['id']}").status_code == 403
    assert bob.request("GET", "api/builds", params={"user": "alice"}).status_code == 403
    assert alice.request("GET", "api/builds").json()["builds"][0]["id"] == build["id"]

    refused = [
        {"profile": "repo", "image": PREFIX + "made-up:latest"},
        {"profile": "repo", "build_id": "0123456789abcdef"},
        {"profile": "repo", "build_id": "../../etc"},
    ]
    for options in refused:
        r = hub.api("POST", "/users/alice/server", json=options)
        assert r.status_code == 400, (options, r.status_code, r.text)
    r = hub.api("POST", "/users/bob/server", json={"profile": "repo", "build_id": build["id"]})
    assert r.status_code in (400, 403), r.text

    r = hub.api("POST", "/users/alice/server", json={"profile": "repo", "build_id": build["id"]})
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: hub.api("GET", "/users/alice").json()["servers"][""]["ready"],
             timeout=150, what="alice's server from the built image")  # fmt: skip

    def docker(*args: str) -> list[str]:
        return subprocess.run(["docker", *args], capture_output=True, text=True,
                              check=True).stdout.split()  # fmt: skip

    running = docker("inspect", "--format", "{{.Image}}", *docker("ps", "-q"))  # image IDs
    assert docker("image", "inspect", "--format", "{{.Id}}", build["image"])[0] in running
    hub.stop_server("alice")
