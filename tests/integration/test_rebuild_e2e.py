"""Rebuild on demand end to end: real service, real repo2docker, real engine and registry,
a Git remote on loopback (issue 12, "Rebuild: a forced build of the same commit produces a
new build record and the old image keeps serving until it is done").

The repository's Dockerfile writes a random marker into the image, then sleeps, so there is
a window in which the rebuild has made its new marker but not finished.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer
from tests.support.registry import MANIFEST_V2, image_path, registry_get

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DOCKERFILE = (
    "FROM {base}\n"
    "RUN head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /tmp/fancy-env-marker"
    " && echo marker-written\n"
    "RUN echo rebuild-window && sleep 8\n"
)


@pytest.fixture
def docker_builder(tmp_path: Path, docker_engine: str) -> Iterator[BuilderProcess]:
    svc = BuilderProcess(tmp_path / "builder", executor="docker")
    svc.start()
    yield svc
    svc.stop()


def docker(*args: str) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def marker_of(image: str) -> str:
    """The marker in a fresh container started from the image *name* (as a spawner does)."""
    return docker("run", "--rm", "--network", "none", "--entrypoint", "cat", image,
                  "/tmp/fancy-env-marker")  # fmt: skip


def registry_digest(image: str) -> str:
    name, tag = image_path(image)
    r = registry_get(f"/v2/{name}/manifests/{tag}", method="HEAD",
                     headers={"Accept": MANIFEST_V2})  # fmt: skip
    assert r.status_code == 200
    return str(r.headers["Docker-Content-Digest"])


def stream_until(
    svc: BuilderProcess, build_id: str, needle: str, user: str = "alice"
) -> list[dict[str, Any]]:
    seen = []
    for m in svc.stream(build_id, user=user, timeout=300):
        if "data" in m:
            seen.append(m["data"])
            if needle in m["data"]["message"] and m["data"]["phase"] == "building":
                return seen
    raise AssertionError(f"{needle!r} never appeared: {seen[-5:]}")


def test_rebuild_keeps_old_image_serving_until_done(
    docker_builder: BuilderProcess, git_server: GitServer, docker_engine: str
) -> None:
    svc = docker_builder
    repo = git_server.create("rebuild-env", {"Dockerfile": DOCKERFILE.format(base=docker_engine)})
    first = svc.post("alice", repo.url).json()
    events = svc.events(first["id"], timeout=300)
    assert events[-1]["phase"] == "built", events[-5:]
    image = first["image"]
    old_marker = marker_of(image)
    old_id = docker("image", "inspect", "-f", "{{.Id}}", image)
    old_digest = registry_digest(image)
    running = docker("run", "-d", "--network", "none", "--entrypoint", "sleep", image, "600")
    try:
        assert svc.post("mallory", repo.url, rebuild=True).status_code == 403
        r = svc.post("alice", repo.url, rebuild=True)
        assert r.status_code == 202, r.text
        rebuild = r.json()
        assert rebuild["id"] != first["id"] and rebuild["image"] == image
        seen = stream_until(svc, rebuild["id"], "rebuild-window")
        assert any("marker-written" in e["message"] for e in seen), "the marker step ran again"

        # the window: the new marker exists in a layer, the name still means the old image
        hit = svc.post("bob", repo.url)
        assert hit.status_code == 200 and hit.json()["cache_hit"] is True, hit.text
        confirmed = svc.get(f"api/builds/{first['id']}").json()  # what the spawner confirms
        assert confirmed["status"] == "built" and confirmed["image"] == image
        assert marker_of(image) == old_marker
        assert docker("image", "inspect", "-f", "{{.Id}}", image) == old_id
        again = svc.post("alice", repo.url, rebuild=True)
        assert again.status_code == 429 and "rebuild_interval" in again.json()["message"]
        assert int(again.headers["Retry-After"]) > 0

        done = svc.events(rebuild["id"], timeout=300)
        assert done[-1]["phase"] == "built", done[-5:]
        log = "\n".join(e["message"] for e in done)
        assert "Using cache" not in log and "Reusing existing image" not in log
        record = svc.get(f"api/builds/{rebuild['id']}").json()
        assert record["rebuild"] is True and record["rebuild_of"] == first["id"]
        assert record["status"] == "built"
        new_marker = marker_of(image)
        assert new_marker != old_marker
        assert docker("image", "inspect", "-f", "{{.Id}}", image) != old_id
        assert registry_digest(image) != old_digest, "the push replaced the registry's tag"
        # a server started from the old image keeps it
        assert docker("exec", running, "cat", "/tmp/fancy-env-marker") == old_marker
        history = svc.get("api/builds", params={"repo": repo.url}).json()["builds"]
        assert {first["id"], rebuild["id"]} <= {b["id"] for b in history}

        # a rebuild that does not finish (cancelled here) leaves the image as it was
        stopped = svc.post("admin", repo.url, rebuild=True).json()
        assert stopped["rebuild_of"] == rebuild["id"]
        stream_until(svc, stopped["id"], "rebuild-window", user="admin")
        assert svc.delete(stopped["id"], user="admin").status_code == 202
        assert svc.events(stopped["id"], user="admin")[-1]["phase"] == "cancelled"
        assert marker_of(image) == new_marker
        assert svc.post("carol", repo.url).json()["cache_hit"] is True
    finally:
        subprocess.run(["docker", "rm", "-f", running], capture_output=True)
