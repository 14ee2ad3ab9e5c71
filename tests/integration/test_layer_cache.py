"""The layer cache across engines (issue 11 item 3): a content-only commit is fast on an
engine that never built the repository, because the build takes the previous image (and the
base image) from the registry as its `cache_from`.

Real everything: the first engine builds and pushes commit 1; the build service then runs
against the second engine (scripts/docker2.sh: its own data root, nothing in it) with the
same build records, and builds commit 2, which changes only a file the last step copies.
The base image reaches the second engine only through the registry: the test pushes
`fancy-env/singleuser:latest` under a name of its own (`.../lc-base:1`), which the
repository's Dockerfile uses as `FROM` and the service lists in `layer_cache_images`.
The second engine has no build network: both engines run RUN steps with network "none".
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.builder import BuilderProcess
from tests.support.docker2 import (
    FIRST_ENGINE,
    docker,
    docker2_host,
    docker_config,
    registry_delete,
    remove_images,
)
from tests.support.gitserver import GitServer
from tests.support.registry import REGISTRY

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DOCKERFILE = "FROM {base}\nRUN echo environment-step && sleep 8\nCOPY . /srv/content/\n"
CACHE_LINE = "[fancy-env] layer cache: "


@pytest.fixture
def engine2() -> str:
    host = docker2_host()
    if host is None:
        if os.environ.get("CI") or not os.environ.get("FANCY_ENV_ALLOW_SKIP"):
            pytest.fail("the second Docker engine is not running: run scripts/setup.sh --test")
        pytest.skip("second Docker engine not available (FANCY_ENV_ALLOW_SKIP=1)")
    return host


@pytest.fixture
def base_image(tmp_path: Path, docker_engine: str, engine2: str) -> Iterator[str]:
    """The single-user image in the registry under a name of this test (absent from engine 2)."""
    name = f"{REGISTRY}/fancy-env-test/lc-base:1"  # a fixed name: the next push is quick
    config = docker_config(tmp_path / "docker-config")
    docker(FIRST_ENGINE, "tag", docker_engine, name)
    docker(FIRST_ENGINE, "push", name, config=config)
    remove_images(engine2, [name])  # (if a failure left it there)
    yield name
    docker(FIRST_ENGINE, "image", "rm", name, check=False)
    registry_delete(name)


def builder(state: Path, base: str, host: str, extra: str = "") -> BuilderProcess:
    config = (
        'c.DockerExecutor.build_network = "none"\n'
        f"c.DockerExecutor.layer_cache_images = [{base!r}{extra}]\n"
    )
    env = {"DOCKER_HOST": host} if host else {}
    return BuilderProcess(state, executor="docker", config=config, env=env)


def build(svc: BuilderProcess, repo_url: str, **body: Any) -> tuple[str, list[dict[str, Any]]]:
    r = svc.post("alice", repo_url, **body)
    assert r.status_code in (200, 202), r.text
    events = svc.events(r.json()["id"], timeout=600)
    assert events[-1]["phase"] == "built", [e["message"] for e in events[-8:]]
    return str(r.json()["image"]), events


def step_lines(events: list[dict[str, Any]], start: str, end: str) -> list[str]:
    """The log lines of the Dockerfile step whose line contains `start`, up to `end`."""
    lines = [e["message"] for e in events]
    first = next(i for i, m in enumerate(lines) if start in m)
    last = next(i for i, m in enumerate(lines) if i > first and end in m)
    return lines[first:last]


def test_content_only_commit_on_a_fresh_engine_uses_the_registry_cache(
    tmp_path: Path, git_server: GitServer, base_image: str, engine2: str
) -> None:
    files = {"Dockerfile": DOCKERFILE.format(base=base_image), "README.md": "v1\n"}
    repo = git_server.create("layer-cache-env", files)
    images: list[str] = []
    first = builder(tmp_path / "builder", base_image, FIRST_ENGINE).start()
    try:
        image1, _ = build(first, repo.url)
        images.append(image1)
    finally:
        first.stop()
    assert not docker(engine2, "images", "-q", image1, check=False)  # a fresh engine
    assert not docker(engine2, "images", "-q", base_image, check=False)

    repo.commit({"README.md": "v2: content only\n"})
    missing = f"{REGISTRY}/fancy-env-test/lc-missing-{secrets.token_hex(4)}:nope"
    second = builder(tmp_path / "builder", base_image, engine2, f", {missing!r}").start()
    try:
        image2, events = build(second, repo.url)
        images.append(image2)
        messages = [e["message"] for e in events]
        assert any(f"{CACHE_LINE}pulled {image1}" in m for m in messages), messages
        assert any(f"{CACHE_LINE}pulled {base_image}" in m for m in messages), messages
        # an image that cannot be pulled only leaves the cache smaller
        assert any(
            f"{CACHE_LINE}could not pull {missing}" in m and "building without it" in m
            for m in messages
        ), messages
        run_step = step_lines(events, "RUN echo environment-step", "COPY . /srv/content/")
        assert any("Using cache" in m for m in run_step), run_step
        assert not any(m.strip() == "environment-step" for m in run_step), run_step
        assert docker(engine2, "images", "-q", image2)

        # a forced rebuild is "without the layer cache": no pull, no cached step
        _, events = build(second, repo.url, rebuild=True)
        messages = [e["message"] for e in events]
        assert not any(CACHE_LINE in m for m in messages), messages
        run_step = step_lines(events, "RUN echo environment-step", "COPY . /srv/content/")
        assert not any("Using cache" in m for m in run_step), run_step
    finally:
        second.stop()
        remove_images(engine2, [*images, base_image])
        remove_images(FIRST_ENGINE, images)
        for image in images:
            registry_delete(image)
