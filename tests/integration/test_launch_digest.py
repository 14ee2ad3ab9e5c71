"""Launch by digest, and images removed by hand, under a real JupyterHub.

Real everything: the hub with FancyDockerSpawner, the build service behind it
(`fancy_env.setup(c)`, Docker executor, real repo2docker), the authenticated registry of
`scripts/setup.sh` (credentials from tests/support/registry.py), the engine. What a server
runs is read inside its container (`docker exec … cat` of the file the repository's
Dockerfile writes), not from a record.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fancy_env.builder.registry import EngineChecker
from tests.integration.test_builder_hub import Client
from tests.support.builder import ROOT
from tests.support.gitserver import GitServer, dockerfile_repo_files
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for
from tests.support.registry import REGISTRY, shared_auth_file, shared_basic

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MARKER = "/tmp/fancy-env-marker"  # written by dockerfile_repo_files' RUN step
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def hub_config(state: Path, base: str, prefix: str) -> str:
    return textwrap.dedent(f"""
    import fancy_env
    c.JupyterHub.spawner_class = "fancy_env.spawner_docker.FancyDockerSpawner"
    c.DockerSpawner.image = {base!r}
    c.DockerSpawner.prefix = "fancy-env-digesttest"
    c.DockerSpawner.pull_policy = "never"
    c.Spawner.start_timeout = 240
    c.Spawner.http_timeout = 60
    c.FancyDockerSpawner.profile_list = [{{
        "display_name": "From a repository", "slug": "repo", "default": True,
        "kubespawner_override": {{"image": {base!r}}},
        "repository_build": {{"enabled": True}},
    }}]
    fancy_env.setup(c, state_dir={str(state)!r}, port={free_port()}, executor="docker",
                    image_prefix={prefix!r}, allow_loopback_repos=True)
    """)


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check and done.returncode:
        raise AssertionError(f"docker {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def registry_url(image: str, reference: str) -> str:
    name = image.rsplit(":", 1)[0]
    host, _, path = name.partition("/")
    return f"http://{host}/v2/{path}/manifests/{reference}"


def registry_digest(image: str, reference: str) -> str | None:
    r = requests.head(registry_url(image, reference), auth=shared_basic(),
                      headers={"Accept": MANIFEST}, timeout=10)  # fmt: skip
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


def cleanup(prefix: str) -> None:
    """Remove what the test put under its own prefix: containers, engine images, manifests."""
    for line in docker("images", "--digests", "--format",
                       "{{.Repository}} {{.Tag}} {{.Digest}}").splitlines():  # fmt: skip
        repo, tag, digest = (line.split() + ["", "", ""])[:3]
        if not repo.startswith(prefix):
            continue
        refs = ([f"{repo}:{tag}"] if tag != "<none>" else []) + (
            [f"{repo}@{digest}"] if digest.startswith("sha256:") else []
        )
        for ref in refs:
            docker("rmi", "-f", ref, check=False)
            name, _, path = repo.partition("/")
            if digest.startswith("sha256:"):
                requests.delete(f"http://{name}/v2/{path}/manifests/{digest}",
                                auth=shared_basic(), timeout=10)  # fmt: skip


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"{REGISTRY}/fancy-env-digest-{secrets.token_hex(3)}/"
    yield value
    docker("rm", "-f", "fancy-env-digesttest-alice", check=False)
    cleanup(value)


@pytest.fixture
def hub(hub_factory: Any, tmp_path: Path, docker_engine: str, prefix: str) -> HubProcess:
    if shared_basic() is None:
        pytest.skip("needs the authenticated registry of scripts/setup.sh")
    hub: HubProcess = hub_factory(config=hub_config(tmp_path / "fe", docker_engine, prefix),
                                  env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    wait_for(lambda: requests.get(hub.url + "services/fancy-env/health", timeout=2).ok,
             timeout=30, what="build service behind the hub")  # fmt: skip
    return hub


def build(client: Client, repo: str) -> dict[str, Any]:
    r = client.request("POST", "api/builds", json={"repo": repo})
    assert r.status_code in (200, 202), r.text
    if r.json()["status"] != "built":
        events = client.events(r.json()["id"])
        assert events[-1]["phase"] == "built", events[-5:]
    detail: dict[str, Any] = client.request("GET", f"api/builds/{r.json()['id']}").json()
    return detail


def launch(hub: HubProcess, build_id: str) -> str:
    """Start alice's server from `build_id`; the marker file read inside its container."""
    r = hub.api("POST", "/users/alice/server", json={"profile": "repo", "build_id": build_id})
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: hub.api("GET", "/users/alice").json()["servers"].get("", {}).get("ready"),
             timeout=300, what="alice's server")  # fmt: skip
    return docker("exec", "fancy-env-digesttest-alice", "cat", MARKER)


def running_image() -> str:
    return docker("inspect", "-f", "{{.Config.Image}}", "fancy-env-digesttest-alice")


def stop(hub: HubProcess) -> None:
    hub.stop_server("alice")


def overwrite_tag(image: str, base: str, config_dir: Path) -> str:
    """Push a different image under `image`'s name:tag (the engine's tag moves too)."""
    context = config_dir / "evil"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(f"FROM {base}\nRUN echo overwritten > {MARKER}\n")
    docker("build", "-q", "--network", "none", "-t", image, str(context))
    auth = shared_auth_file()
    assert auth is not None
    (config_dir / "config.json").write_text(auth.read_text())  # no `docker login`
    docker("--config", str(config_dir), "push", image)
    return docker("inspect", "-f", "{{.Id}}", image)


def test_launch_runs_the_confirmed_digest_after_the_tag_is_overwritten(
    hub: HubProcess, git_server: GitServer, docker_engine: str, tmp_path: Path
) -> None:
    alice = Client(hub, hub.user_token("alice"))
    repo = git_server.create("pinned", dockerfile_repo_files(docker_engine, "confirmed"))
    first = build(alice, repo.url)
    image, digest = first["image"], first["digest"]
    assert digest.startswith("sha256:") and digest == registry_digest(image, first["commit"])
    name = image.rsplit(":", 1)[0]
    assert first["launch_image"] == f"{name}@{digest}"

    assert launch(hub, first["id"]) == "confirmed"
    assert running_image() == f"{name}@{digest}"
    stop(hub)

    overwrite_tag(image, docker_engine, tmp_path / "pusher")
    moved = registry_digest(image, first["commit"])
    assert moved is not None and moved != digest  # the registry's tag names another image
    assert docker("run", "--rm", "--network", "none", image, "cat", MARKER) == "overwritten"

    assert launch(hub, first["id"]) == "confirmed"  # the confirmed digest, not the tag
    assert running_image() == f"{name}@{digest}"
    stop(hub)


def test_image_removed_by_hand_is_built_again_at_the_next_launch(
    hub: HubProcess, git_server: GitServer, docker_engine: str
) -> None:
    alice = Client(hub, hub.user_token("alice"))
    repo = git_server.create("removed", dockerfile_repo_files(docker_engine, "rebuilt"))
    first = build(alice, repo.url)
    image, digest = first["image"], first["digest"]
    name = image.rsplit(":", 1)[0]

    # by hand: from the engine (tag and digest) and from the registry
    docker("rmi", "-f", image, f"{name}@{digest}")
    assert docker("images", "-q", name) == ""
    r = requests.delete(registry_url(image, digest), auth=shared_basic(), timeout=10)
    assert r.status_code == 202, r.text
    assert registry_digest(image, first["commit"]) is None

    # the cache check still remembers the image (300 s): the form's request is a cache hit
    again = alice.request("POST", "api/builds", json={"repo": repo.url}).json()
    assert again["status"] == "built" and again["cache_hit"], again
    # the launch confirms it, finds it gone, builds it again and starts from the new build
    assert launch(hub, again["id"]) == "rebuilt"
    builds = alice.request("GET", "api/builds", params={"mine": "1"}).json()["builds"]
    fresh = [b for b in builds if b["id"] not in (first["id"], again["id"])]
    assert len(fresh) == 1 and fresh[0]["status"] == "built" and not fresh[0]["cache_hit"]
    new_digest = fresh[0]["digest"]
    assert running_image() == f"{name}@{new_digest}"
    assert registry_digest(image, first["commit"]) == new_digest
    assert alice.request("GET", f"api/builds/{again['id']}").json()["status"] == "removed"
    stop(hub)

    # the old build id launches the image that now serves its name, without building again
    assert launch(hub, first["id"]) == "rebuilt"
    after = alice.request("GET", "api/builds", params={"mine": "1"}).json()["builds"]
    assert len(after) == len(builds), json.dumps(after[:2])
    assert running_image() == f"{name}@{new_digest}"
    stop(hub)


def test_engine_pins_by_image_id(docker_engine: str) -> None:
    """Without a registry the pin is the engine's image ID, which Docker runs as is."""
    checker = EngineChecker()
    image_id = asyncio.run(checker.find(docker_engine))
    assert image_id is not None and image_id.startswith("sha256:")
    assert asyncio.run(checker.verify(docker_engine, image_id))
    assert not asyncio.run(checker.verify(docker_engine, "sha256:" + "0" * 64))
    assert asyncio.run(checker.find("fancy-env/no-such-image:latest")) is None
    out = docker("run", "--rm", "--network", "none", image_id, "cat", "/etc/hostname")
    assert out
