"""Untrusted repositories through the real service: the fetch step holds (issue 9, items 1-2).

Real build service (Docker executor), real repo2docker and engine, real Git remotes on
loopback, canary listeners the tests start on 127.0.0.1. Each attack is made the way a user
makes it: a repository served over HTTP and `POST api/builds`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.builder import BuilderProcess
from tests.support.canary import Canary
from tests.support.gitserver import GitServer, dockerfile_repo_files
from tests.support.net import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "FANCY-ENV-DECOY-SECRET-7f3a"
SLOW_DOCKERFILE = "FROM {base}\nRUN echo start-sleeping && sleep 60\n"

Factory = Callable[..., BuilderProcess]


@pytest.fixture
def fetch_root() -> Iterator[Path]:
    """The fetch directory's parent: under /tmp, 0711, so the fetch user (nobody) reaches it."""
    root = Path(tempfile.mkdtemp(prefix="fancy-env-fetch-e2e-", dir="/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def services(tmp_path: Path, fetch_root: Path, docker_engine: str) -> Iterator[Factory]:
    started: list[BuilderProcess] = []

    def make(name: str = "builder", config: str = "") -> BuilderProcess:
        svc = BuilderProcess(
            tmp_path / name, executor="docker",
            config=f"c.DockerExecutor.fetch_dir = {str(fetch_root / name)!r}\n"
            + textwrap.dedent(config),
        )  # fmt: skip
        started.append(svc)
        return svc.start()

    yield make
    for svc in started:
        svc.stop()


@pytest.fixture
def decoy(tmp_path: Path) -> Path:
    """A host directory holding a root-only file, which no build may read or delete."""
    path = tmp_path / "decoy"
    path.mkdir()
    (path / "secret").write_text(SECRET + "\n")
    (path / "secret").chmod(0o600)
    return path


def final(svc: BuilderProcess, build_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events = svc.events(build_id, timeout=400)
    return events[-1], events


def leftovers(svc: BuilderProcess, fetch_root: Path) -> list[str]:
    path = fetch_root / svc.state.name
    return sorted(os.listdir(path)) if path.exists() else []


def image_exists(image: str) -> bool:
    out = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    return out.returncode == 0


@pytest.mark.parametrize(
    ("link", "target", "subdir", "named"),
    [
        ("r", "/", "r{decoy}", "'r'"),
        ("binder", "{decoy}", "", "'binder'"),
        ("apt.txt", "{decoy}/secret", "", "'apt.txt'"),
    ],
)
def test_links_out_of_the_checkout_never_reach_a_build(
    services: Factory, git_server: GitServer, docker_engine: str, fetch_root: Path,
    decoy: Path, link: str, target: str, subdir: str, named: str,
) -> None:  # fmt: skip
    svc = services()
    repo = git_server.create("links", dockerfile_repo_files(docker_engine, "links"))
    repo.symlink(link, target.format(decoy=decoy))
    r = svc.post("alice", repo.url, subdir=subdir.format(decoy=decoy))
    assert r.status_code == 202, r.text
    build = r.json()
    last, events = final(svc, build["id"])
    assert last["phase"] == "failed"
    assert named in last["message"] and "outside the repository" in last["message"]
    record = svc.get(f"api/builds/{build['id']}").json()
    assert record["status"] == "failed" and named in record["reason"]
    assert not any(SECRET in e["message"] for e in events)
    assert SECRET not in svc.log_path.read_text(errors="replace")
    assert "cannot reach fetch_dir" not in svc.log_path.read_text(errors="replace")
    assert not image_exists(build["image"]), "no image is produced"
    assert (decoy / "secret").read_text() == SECRET + "\n", "the decoy is untouched"
    assert leftovers(svc, fetch_root) == []


def test_submodules_to_loopback_spellings_are_never_fetched(
    services: Factory, git_server: GitServer, docker_engine: str
) -> None:
    with Canary() as canary:
        spellings = [
            f"http://2130706433:{canary.port}/x.git",
            f"http://[::ffff:127.0.0.1]:{canary.port}/x.git",
        ]
        both = git_server.create("subs", dockerfile_repo_files(docker_engine, "subs"))
        both.gitlink("a", spellings[0])
        both.gitlink("b", spellings[1])
        off = services("off")
        build = off.post("alice", both.url).json()
        last, events = final(off, build["id"])
        assert last["phase"] == "built", events[-5:]
        assert any("2 submodule(s); they are not fetched" in e["message"] for e in events)

        on = services("on", "c.DockerExecutor.allow_submodules = True\n"
                            'c.BuilderApp.allowed_http_hosts = {"*"}\n')  # fmt: skip
        for name, url in zip(["one", "two"], spellings, strict=True):
            repo = git_server.create(name, dockerfile_repo_files(docker_engine, name))
            repo.gitlink("lib", url)
            build = on.post("alice", repo.url).json()
            last, _ = final(on, build["id"])
            assert last["phase"] == "failed"
            assert "submodule 'lib'" in last["message"], last
            assert "loopback address, which is not allowed" in last["message"], last
        assert canary.connections == 0


def test_clone_time_redirect_to_another_host_is_refused(
    services: Factory, tmp_path: Path, docker_engine: str
) -> None:
    with Canary() as canary:
        server = GitServer(tmp_path / "moved", redirect_to=f"http://127.0.0.1:{canary.port}")
        server.start()
        try:
            repo = server.create("moved", dockerfile_repo_files(docker_engine, "moved"))
            svc = services()
            r = svc.post("alice", repo.url, ref="main")
            assert r.status_code == 202, r.text  # the ref lookup was answered normally
            last, _ = final(svc, r.json()["id"])
            assert last["phase"] == "failed"
            assert "repository redirected (HTTP 302)" in last["message"], last
        finally:
            server.stop()
        assert canary.connections == 0


def stream_until(svc: BuilderProcess, build_id: str, needle: str) -> None:
    for m in svc.stream(build_id, timeout=400):
        if "data" in m and needle in m["data"]["message"]:
            return
    raise AssertionError(f"{needle!r} never appeared")


def test_no_checkout_is_left_behind(
    services: Factory, git_server: GitServer, docker_engine: str, fetch_root: Path
) -> None:
    svc = services()
    files = {f"env/{k}": v for k, v in dockerfile_repo_files(docker_engine, "sub").items()}
    subdir_repo = git_server.create("subdir", files)
    build = svc.post("alice", subdir_repo.url, subdir="env").json()
    assert final(svc, build["id"])[0]["phase"] == "built"
    assert leftovers(svc, fetch_root) == []

    sleepy = git_server.create("sleepy", {"Dockerfile": SLOW_DOCKERFILE.format(base=docker_engine)})
    build = svc.post("alice", sleepy.url).json()
    stream_until(svc, build["id"], "Running in")
    assert len(leftovers(svc, fetch_root)) == 1, "the running build's checkout is here"
    assert svc.delete(build["id"]).status_code == 202
    assert final(svc, build["id"])[0]["phase"] == "cancelled"
    assert leftovers(svc, fetch_root) == []

    build = svc.post("alice", sleepy.url).json()  # the service stops mid-build
    stream_until(svc, build["id"], "Running in")
    svc.stop()
    assert leftovers(svc, fetch_root) == []
    svc.start()

    build = svc.post("alice", sleepy.url).json()  # the service is killed mid-build
    stream_until(svc, build["id"], "Running in")
    svc.kill9()
    stale = leftovers(svc, fetch_root)
    assert len(stale) == 1
    svc.start()
    failing = git_server.create("failing", {"Dockerfile": f"FROM {docker_engine}\nRUN exit 3\n"})
    build = svc.post("alice", failing.url).json()
    assert final(svc, build["id"])[0]["phase"] == "failed"
    wait_for(lambda: leftovers(svc, fetch_root) == [], timeout=10, what="no checkout left")
