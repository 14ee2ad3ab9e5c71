"""The registry takes pushes only with credentials (issue 9, build item 4).

Real Debian docker-registry with htpasswd auth (a private instance on a free loopback port, so
the shared one is not touched), real repo2docker builds through the local engine, the build
service as a subprocess with `BuilderApp.registry_credentials_file`:

- a build pushes with the service's credentials; the next request is a cache hit with no
  executor run (`fancy_env_executor_runs_total` does not move), also after the local engine
  lost its copy (the service pulls it with its credential, so servers still launch);
- the password is in no build log (a `RUN env` step prints the build's environment), not in
  the image's history, config or layers (`docker save`);
- an anonymous upload (`POST /v2/<name>/blobs/uploads/`) and a `docker push` without
  auth_config are refused;
- a wrong credential is an error naming the registry and the fix, in the build record and once
  in the service log, not a rebuild; no credential at all says which trait to set.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer
from tests.support.registry import RegistryProcess, image_path, write_auth

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENV_DOCKERFILE = "FROM {base}\nRUN env | sort && echo {marker} > /tmp/fancy-env-marker\n"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    reg = RegistryProcess(tmp_path / "registry").start()
    yield reg
    reg.stop()


@pytest.fixture
def images() -> Iterator[list[str]]:
    """Image names the test made in the local engine; removed at the end."""
    made: list[str] = []
    yield made
    if made:
        subprocess.run(["docker", "rmi", "-f", *made], capture_output=True)


def executor_runs(svc: BuilderProcess) -> float:
    m = re.search(r"^fancy_env_executor_runs_total ([0-9.]+)$", svc.get("metrics").text, re.M)
    return float(m.group(1)) if m else 0.0


def builder(tmp_path: Path, registry: RegistryProcess, auth: Path | None) -> BuilderProcess:
    return BuilderProcess(
        tmp_path / "builder", executor="docker", registry=registry.addr,
        registry_auth=auth, config="c.BuilderApp.cache_check_ttl = 0\n",
    )  # fmt: skip


def test_push_with_credentials_cache_hit_and_no_leak(
    tmp_path: Path,
    registry: RegistryProcess,
    git_server: GitServer,
    docker_engine: str,
    images: list[str],
) -> None:
    svc = builder(tmp_path, registry, registry.auth_file).start()
    try:
        repo = git_server.create(
            "env", {"Dockerfile": ENV_DOCKERFILE.format(base=docker_engine, marker="v1")}
        )
        r = svc.post("alice", repo.url)
        assert r.status_code == 202, r.text
        first = r.json()
        images.append(first["image"])
        events = svc.events(first["id"], timeout=300)
        assert events[-1]["phase"] == "built", events[-8:]
        assert registry.has(first["image"])
        log_text = "\n".join(e["message"] for e in events)
        assert "HOSTNAME=" in log_text or "PATH=" in log_text, "the RUN env step printed nothing"
        runs = executor_runs(svc)
        assert runs == 1

        again = svc.post("alice", repo.url)
        assert again.status_code == 200, again.text
        assert again.json()["cache_hit"] is True and again.json()["status"] == "built"
        assert executor_runs(svc) == runs, "a cache hit must not run repo2docker"

        # the engine lost its copy: the service pulls it (with its credential), no rebuild,
        # so DockerSpawner (which never holds the credential) finds the image locally again
        subprocess.run(["docker", "rmi", first["image"]], check=True, capture_output=True)
        third = svc.post("alice", repo.url)
        assert third.status_code == 200 and third.json()["cache_hit"] is True, third.text
        assert executor_runs(svc) == runs
        present = subprocess.run(
            ["docker", "image", "inspect", first["image"]], capture_output=True
        )
        assert present.returncode == 0, "the image is back in the local engine"
        service_log = svc.tail(100000)
    finally:
        svc.stop()

    secret = registry.password
    assert secret not in log_text, "the password reached the build log"
    assert "CONTAINER_ENGINE_REGISTRY_CREDENTIALS" not in log_text
    assert secret not in service_log
    assert secret not in _image_dump(first["image"], tmp_path)


def _image_dump(image: str, tmp_path: Path) -> str:
    """History, config and every layer of the image as one text (the tar of `docker save`)."""
    history = subprocess.run(
        ["docker", "history", "--no-trunc", image], capture_output=True, text=True, check=True
    ).stdout
    inspect = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
    ).stdout
    tar = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(tar), image], check=True)
    # layers are tars inside the tar: uncompressed, so a byte search sees every file
    layers = tar.read_bytes().decode("latin-1")
    return history + inspect + layers


def test_anonymous_pushes_are_refused(
    registry: RegistryProcess, docker_engine: str, images: list[str]
) -> None:
    r = registry.get("/v2/fancy-env-test/evil/blobs/uploads/", method="POST")
    assert r.status_code == 401, r.text
    assert "Basic" in r.headers.get("WWW-Authenticate", "")
    assert registry.get("/v2/_catalog").status_code == 401
    with_auth = registry.get("/v2/_catalog", auth=(registry.user, registry.password))
    assert with_auth.status_code == 200

    tag = f"{registry.addr}/fancy-env-test/evil:1"
    subprocess.run(["docker", "tag", docker_engine, tag], check=True)
    images.append(tag)
    push = subprocess.run(["docker", "push", tag], capture_output=True, text=True, timeout=120)
    assert push.returncode != 0, push.stdout
    assert re.search(r"no basic auth credentials|unauthorized", push.stderr + push.stdout), (
        push.stderr
    )
    name, _ = image_path(tag)
    assert registry.get(f"/v2/{name}/tags/list", auth=(registry.user, "x")).status_code == 401


@pytest.mark.parametrize("case", ["wrong-password", "no-credentials"])
def test_refused_credential_is_an_error_not_a_rebuild(
    tmp_path: Path, registry: RegistryProcess, git_server: GitServer, docker_engine: str, case: str
) -> None:
    if case == "wrong-password":
        auth: Path | None = write_auth(
            tmp_path / "wrong.json", registry.addr, registry.user, "not-the-password"
        )
        expected = [registry.addr, "refused the credentials", "registry_credentials_file"]
    else:
        auth = None
        expected = [registry.addr, "requires credentials", "BuilderApp.registry_credentials_file"]
    svc = builder(tmp_path, registry, auth).start()
    try:
        repo = git_server.create("env", {"Dockerfile": f"FROM {docker_engine}\n"})
        records: list[dict[str, Any]] = []
        for _ in range(2):
            r = svc.post("alice", repo.url)
            assert r.status_code == 202, r.text
            records.append(svc.get(f"api/builds/{r.json()['id']}").json())
        events = svc.events(records[0]["id"])
        assert executor_runs(svc) == 0, "a refused credential must not start a build"
        log = svc.tail(100000)
    finally:
        svc.stop()
    for record in records:
        assert record["status"] == "failed"
        for needle in expected:
            assert needle in record["reason"], record["reason"]
    assert events[-1]["phase"] == "failed" and events[-1]["message"] == records[0]["reason"]
    assert log.count(records[0]["reason"]) == 1, "the admin's log gets the error once"
    assert "not-the-password" not in log
