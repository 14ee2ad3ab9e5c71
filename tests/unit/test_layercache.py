"""The layer cache (`cache_from`, issue 11 item 3): which images a build reuses layers from,
the repo2docker command lines and the build pod's arguments, and whose credentials a cache
pull sends (pure tables; the real cross-engine build is tests/integration/test_layer_cache.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest
from traitlets.config import Config

from fancy_env.builder.executors.base import BuildJob
from fancy_env.builder.executors.docker import DockerExecutor
from fancy_env.builder.executors.kube import KubernetesExecutor, build_pod_manifest
from fancy_env.builder.executors.layercache import (
    cache_from_args,
    cache_sources,
    previous_image,
    reference_registry,
)
from fancy_env.builder.r2d_engine import DockerAPIEngine

REPO = "http://127.0.0.1:8000/env.git"
PREV = "127.0.0.1:5000/fe/env:" + "a" * 40
BASE = "127.0.0.1:5000/fe/base:1"
JOB = BuildJob("b1", REPO, "", "b" * 40, "", "127.0.0.1:5000/fe/env:" + "b" * 40, push=True)


@pytest.mark.parametrize(
    ("job", "enabled", "images", "expected"),
    [
        (replace(JOB, previous_image=PREV), True, [BASE], [PREV, BASE]),
        (replace(JOB, previous_image=PREV), True, [], [PREV]),
        (JOB, True, [BASE], [BASE]),  # the repository's first build: base images only
        (JOB, True, [], []),
        (replace(JOB, previous_image=PREV), False, [BASE], []),  # layer_cache off
        (replace(JOB, previous_image=PREV, no_cache=True), True, [BASE], []),  # a rebuild
        (replace(JOB, previous_image=PREV), True, [PREV, " ", BASE, BASE], [PREV, BASE]),
        (replace(JOB, previous_image=JOB.image), True, [JOB.image], []),  # never itself
    ],
)
def test_cache_sources(
    job: BuildJob, enabled: bool, images: list[str], expected: list[str]
) -> None:
    assert cache_sources(job, enabled, images) == expected


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("127.0.0.1:5000/fe/env:abc", "127.0.0.1:5000"),
        ("ghcr.io/org/env:1", "ghcr.io"),
        ("GHCR.io/org/env@sha256:" + "0" * 64, "ghcr.io"),
        ("localhost/env:1", "localhost"),
        ("localhost:5000/env", "localhost:5000"),
        ("org/env:1", "docker.io"),  # no dot, no port: a Docker Hub namespace
        ("ubuntu:24.04", "docker.io"),
        ("fancy-env/singleuser:latest", "docker.io"),
    ],
)
def test_reference_registry(image: str, registry: str) -> None:
    assert reference_registry(image) == registry


@dataclass
class Rec:
    image: str
    status: str = "built"
    repo: str = REPO
    subdir: str = ""


@pytest.mark.parametrize(
    ("builds", "expected"),
    [
        ([Rec(PREV)], PREV),
        ([Rec("x:new", status="failed"), Rec(PREV)], PREV),  # only built images
        ([Rec("x:1", status="building"), Rec(PREV)], PREV),
        ([Rec(JOB.image), Rec(PREV)], PREV),  # not the image being built
        ([Rec("x:other", repo="http://127.0.0.1:8000/other.git"), Rec(PREV)], PREV),
        ([Rec("x:sub", subdir="docs"), Rec(PREV)], PREV),  # same subdirectory only
        ([Rec("x:newest"), Rec(PREV)], "x:newest"),  # newest first
        ([], ""),
    ],
)
def test_previous_image(builds: list[Rec], expected: str) -> None:
    assert previous_image(builds, JOB) == expected


def docker_executor(**traits: object) -> DockerExecutor:
    config = Config({"DockerExecutor": {"repo2docker_command": ["r2d"], **traits}})
    return DockerExecutor(config=config)


def test_docker_command_has_cache_from() -> None:
    ex = docker_executor(layer_cache_images=[BASE])
    cmd = ex.command(replace(JOB, previous_image=PREV), "/tmp/ctx")
    assert cache_from_args([PREV, BASE]) == ["--cache-from", PREV, "--cache-from", BASE]
    i = cmd.index("--cache-from")
    assert cmd[i : i + 4] == ["--cache-from", PREV, "--cache-from", BASE]
    assert cmd[-1] == "/tmp/ctx"


@pytest.mark.parametrize(
    ("traits", "job"),
    [
        ({"layer_cache": False, "layer_cache_images": [BASE]}, replace(JOB, previous_image=PREV)),
        ({"layer_cache_images": [BASE]}, replace(JOB, previous_image=PREV, no_cache=True)),
    ],
)
def test_docker_command_without_cache(traits: dict[str, object], job: BuildJob) -> None:
    cmd = docker_executor(**traits).command(job, "/tmp/ctx")
    assert "--cache-from" not in cmd


def test_layer_cache_traits_defaults() -> None:
    ex = DockerExecutor()
    assert ex.layer_cache is True
    assert ex.layer_cache_images == []
    assert ex.layer_cache_pull_timeout == 300
    for name in ("layer_cache", "layer_cache_images", "layer_cache_pull_timeout"):
        assert len(ex.trait_metadata(name, "help") or "") > 80, name
        assert ex.trait_metadata(name, "config") is True


def builder_args(manifest: dict[str, object]) -> list[str]:
    spec = manifest["spec"]
    assert isinstance(spec, dict)
    (container,) = spec["containers"]
    return list(container["args"])


def test_build_pod_passes_cache_from() -> None:
    manifest = build_pod_manifest(
        replace(JOB, previous_image=PREV), namespace="ns", build_image="r2d:1",
        cache_from=[PREV, BASE],
    )  # fmt: skip
    assert builder_args(manifest) == [
        "repo2docker", "--engine", "docker", "--json-logs", "--no-run",
        "--user-id", "1000", "--user-name", "jovyan", "--image-name", JOB.image, "--push",
        "--cache-from", PREV, "--cache-from", BASE, "/work/src",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("traits", "job", "expected"),
    [
        ({"layer_cache_images": [BASE]}, replace(JOB, previous_image=PREV), [PREV, BASE]),
        ({"layer_cache": False}, replace(JOB, previous_image=PREV), []),
        ({"layer_cache_images": [BASE]}, replace(JOB, previous_image=PREV, no_cache=True), []),
    ],
)
def test_kube_executor_manifest_cache_from(
    traits: dict[str, object], job: BuildJob, expected: list[str]
) -> None:
    ex = KubernetesExecutor(config=Config({"KubernetesExecutor": {"namespace": "ns", **traits}}))
    args = builder_args(ex.manifest(job))
    assert [args[i + 1] for i, a in enumerate(args) if a == "--cache-from"] == expected


CREDS = {"registry": "http://127.0.0.1:5000", "username": "fe", "password": "pw"}


@pytest.mark.parametrize(
    ("creds", "image", "auth"),
    [
        (CREDS, PREV, {"username": "fe", "password": "pw"}),
        (CREDS, "127.0.0.1:5001/fe/env:1", None),  # another registry: never our password
        (CREDS, "ghcr.io/org/env:1", None),
        (CREDS, "fe/env:1", None),  # Docker Hub
        ({}, PREV, None),
        ({**CREDS, "registry": "127.0.0.1:5000"}, PREV, {"username": "fe", "password": "pw"}),
    ],
)
def test_pull_sends_credentials_only_to_their_registry(
    creds: dict[str, str], image: str, auth: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the way r2d_run's engine gets them: repo2docker reads this variable
    monkeypatch.setenv("CONTAINER_ENGINE_REGISTRY_CREDENTIALS", json.dumps(creds))
    engine = DockerAPIEngine(parent=None)
    assert engine.pull_auth(image) == auth
