"""The build service end to end: real Git remote, real repo2docker, real engine and registry.

Acceptance of issue 3: build + push, cache hit with no build, new commit -> new image,
cancel, Last-Event-ID resume, kill -9 + restart, and the Docker spawner accepting only a
confirmed build.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer, dockerfile_repo_files
from tests.support.net import wait_for
from tests.support.registry import REGISTRY, registry_has

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SLOW_DOCKERFILE = "FROM {base}\nRUN echo start-sleeping && sleep 60\n"


@pytest.fixture
def docker_builder(tmp_path: Path, docker_engine: str) -> Iterator[BuilderProcess]:
    svc = BuilderProcess(tmp_path / "builder", executor="docker")
    svc.start()
    yield svc
    svc.stop()


def executor_runs(svc: BuilderProcess) -> float:
    text = svc.get("metrics").text
    m = re.search(r"^fancy_env_executor_runs_total ([0-9.]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def wait_built(svc: BuilderProcess, build_id: str) -> dict[str, Any]:
    events = svc.events(build_id, timeout=300)
    assert events[-1]["phase"] == "built", events[-5:]
    return events[-1]


def running_in(events: list[dict[str, Any]]) -> list[str]:
    ids = []
    for e in events:
        m = re.search(r"Running in ([0-9a-f]{12})", e["message"])
        if m:
            ids.append(m.group(1))
    return ids


def container_running(container_id: str) -> bool:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", container_id],
        capture_output=True, text=True,
    )  # fmt: skip
    return out.returncode == 0 and out.stdout.strip() == "true"


def stream_until(svc: BuilderProcess, build_id: str, needle: str) -> list[dict[str, Any]]:
    seen = []
    for m in svc.stream(build_id, timeout=300):
        if "data" in m:
            seen.append(m["data"])
            if needle in m["data"]["message"]:
                return seen
    raise AssertionError(f"{needle!r} never appeared: {seen[-5:]}")


def test_build_push_cache_hit_and_new_commit(
    docker_builder: BuilderProcess, git_server: GitServer, docker_engine: str
) -> None:
    svc = docker_builder
    repo = git_server.create("env", dockerfile_repo_files(docker_engine, "v1"))
    r = svc.post("alice", repo.url)
    assert r.status_code == 202, r.text
    first = r.json()
    assert first["image"].startswith(f"{REGISTRY}/fancy-env-test/")
    done = wait_built(svc, first["id"])
    assert done["image"] == first["image"]
    assert registry_has(first["image"])
    record = svc.get(f"api/builds/{first['id']}").json()
    assert record["status"] == "built" and record["finished"]
    runs = executor_runs(svc)

    again = svc.post("alice", repo.url)
    assert again.status_code == 200
    assert again.json()["status"] == "built" and again.json()["cache_hit"] is True
    assert again.json()["image"] == first["image"]
    assert executor_runs(svc) == runs, "a cache hit must not run repo2docker"

    repo.commit(dockerfile_repo_files(docker_engine, "v2"))
    newer = svc.post("alice", repo.url).json()
    assert newer["status"] in ("queued", "fetching", "building")
    assert newer["image"] != first["image"]
    assert wait_built(svc, newer["id"])["image"] == newer["image"]
    assert registry_has(newer["image"])
    history = svc.get("api/builds", params={"repo": repo.url}).json()["builds"]
    assert {b["id"] for b in history} == {first["id"], again.json()["id"], newer["id"]}


def test_cancel_stops_running_build(
    docker_builder: BuilderProcess, git_server: GitServer, docker_engine: str
) -> None:
    svc = docker_builder
    repo = git_server.create("sleepy", {"Dockerfile": SLOW_DOCKERFILE.format(base=docker_engine)})
    build = svc.post("alice", repo.url).json()
    seen = stream_until(svc, build["id"], "Running in")
    assert svc.delete(build["id"], user="mallory").status_code == 403
    t0 = time.monotonic()
    assert svc.delete(build["id"], user="alice").status_code == 202
    wait_for(lambda: svc.get(f"api/builds/{build['id']}").json()["status"] == "cancelled",
             timeout=30, what="build cancelled")  # fmt: skip
    assert time.monotonic() - t0 < 30
    events = svc.events(build["id"])
    assert events[-1]["phase"] == "cancelled" and "alice" in events[-1]["message"]
    for cid in running_in(seen):
        wait_for(lambda cid=cid: not container_running(cid), timeout=30, what="container gone")


def test_last_event_id_resume_gets_exactly_missing_lines(
    docker_builder: BuilderProcess, git_server: GitServer, docker_engine: str
) -> None:
    svc = docker_builder
    repo = git_server.create("resume", dockerfile_repo_files(docker_engine, "resume"))
    build = svc.post("alice", repo.url).json()
    head: list[dict[str, Any]] = []
    for m in svc.stream(build["id"]):
        if "data" in m:
            head.append(m["data"])
            if len(head) == 4:
                break  # the client goes away mid-build
    tail = svc.events(build["id"], last_event_id=head[-1]["seq"], timeout=300)
    assert tail[-1]["phase"] == "built"
    whole = svc.events(build["id"])
    assert [e["seq"] for e in head + tail] == list(range(1, len(whole) + 1))
    assert head + tail == whole


def test_kill9_restart_leaves_no_build_running(
    docker_builder: BuilderProcess, git_server: GitServer, docker_engine: str
) -> None:
    svc = docker_builder
    repo = git_server.create("killed", {"Dockerfile": SLOW_DOCKERFILE.format(base=docker_engine)})
    build = svc.post("alice", repo.url).json()
    seen = stream_until(svc, build["id"], "Running in")
    svc.kill9()
    svc.start()
    record = svc.get(f"api/builds/{build['id']}").json()
    assert record["status"] == "failed"
    assert record["reason"] == "interrupted by restart"
    events = svc.events(build["id"])
    assert events[-1]["phase"] == "failed"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(b["status"] in ("built", "failed", "cancelled")
               for b in svc.get("api/builds", user="alice").json()["builds"])  # fmt: skip
    for cid in running_in(seen):
        wait_for(lambda cid=cid: not container_running(cid), timeout=60, what="container gone")
