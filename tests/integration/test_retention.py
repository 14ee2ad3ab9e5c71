"""Image retention end to end: real builds, real engine, a real registry, `fancy-env gc`.

Acceptance (issue 11): after 30 builds of 3 repositories with keep_per_repo=2, exactly the
2 newest images per repository plus one in use (a container runs it) remain in the engine
(`docker images`) and in the registry (its `/v2/_catalog` and `tags/list`); the registry's
garbage collection shrinks its blobs; a removed image asked for again is built again (not a
cache hit, though the cache check remembered it), and a launch of its old build record
starts from the new build.

The registry is the same Debian `docker-registry` as scripts/setup.sh's, with the same config
(`storage.delete.enabled: true`), but an instance of its own on a free loopback port: its
garbage collection must not race the pushes other test sessions make to 127.0.0.1:5000.
Because that registry starts empty, the repositories build `FROM` a 2 MB base made here (the
host's `sleep` and its two libraries, `docker import`ed), not the 700 MB single-user image:
compressing and pushing that to a fresh registry took minutes per repository on a loaded
2-core machine, and retention does not care what is inside an image.
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fancy_env.buildref import HTTPBuildConfirmer
from fancy_env.sharing.links import Link, LinkSpec, hash_code, new_code, new_link_id
from fancy_env.sharing.store import LinkStore
from tests.support import db
from tests.support.builder import ROOT, BuilderProcess
from tests.support.gitserver import GitServer
from tests.support.net import free_port, wait_for
from tests.support.registry import REGISTRY as SHARED_REGISTRY
from tests.support.registry import registry_get, shared_basic

TOKEN = "retention-test-service-token"
REPOS, COMMITS, KEEP = 3, 10, 2


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.config = root / "registry.yml"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Registry:
        (self.root / "data").mkdir(parents=True)
        self.config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage:\n  filesystem: {{rootdirectory: {self.root / 'data'}}}\n"
            "  delete: {enabled: true}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        log = (self.root / "registry.log").open("ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.config)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(self._up, timeout=20, what="registry /v2/")
        return self

    def _up(self) -> bool:
        try:
            return requests.get(self.url + "/v2/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def blob_bytes(self) -> int:
        blobs = self.root / "data" / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data") if p.is_file())

    def contents(self, path_prefix: str) -> dict[str, set[str]]:
        """Repository -> tags, from the registry's own catalogue and tags lists."""
        catalog = requests.get(self.url + "/v2/_catalog?n=1000", timeout=10).json()
        out = {}
        for repo in catalog.get("repositories") or []:
            if repo.startswith(path_prefix):
                tags = requests.get(f"{self.url}/v2/{repo}/tags/list", timeout=10).json()
                out[repo] = set(tags.get("tags") or [])
        return out


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is not installed: run scripts/setup.sh first")
    reg = Registry(tmp_path / "registry").start()
    yield reg
    reg.stop()


SLEEP_FILES = {  # path in the image: path on the host (followed if a symbolic link)
    "usr/bin/sleep": "/usr/bin/sleep",
    "lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
    "lib64/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2",
}


@pytest.fixture
def tiny_base(docker_engine: str) -> Iterator[str]:
    """A 2 MB image that can run `sleep` (the host's binary and libraries)."""
    name = f"fancy-env-gc-test-base:{secrets.token_hex(4)}"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for inside, host in SLEEP_FILES.items():
            tar.add(os.path.realpath(host), arcname=inside)
    subprocess.run(["docker", "import", "-", name], input=data.getvalue(), check=True,
                   capture_output=True)  # fmt: skip
    yield name
    subprocess.run(["docker", "rmi", name], capture_output=True)


def engine_images(prefix: str) -> set[str]:
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {line for line in out.stdout.split() if line.startswith(prefix)}


def remove_engine_images(prefix: str) -> None:
    images = sorted(engine_images(prefix))
    if images:
        subprocess.run(["docker", "rmi", *images], capture_output=True)


def delete_from_registry(prefix: str) -> None:
    """Delete every manifest under `prefix` (a test's own path) from its registry."""
    host, _, path = prefix.partition("/")
    base = f"http://{host}/v2/"
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    auth = shared_basic() if host == SHARED_REGISTRY else None  # setup.sh's registry has auth
    catalog = requests.get(base + "_catalog?n=1000", auth=auth, timeout=30).json()
    for repo in catalog.get("repositories") or []:
        if not repo.startswith(path):
            continue
        tags = requests.get(f"{base}{repo}/tags/list", auth=auth, timeout=10).json()
        for tag in tags.get("tags") or []:
            head = requests.head(
                f"{base}{repo}/manifests/{tag}", headers=accept, auth=auth, timeout=10
            )
            digest = head.headers.get("Docker-Content-Digest")
            if digest:
                requests.delete(f"{base}{repo}/manifests/{digest}", auth=auth, timeout=10)


def fancy_env_gc(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "fancy_env.cli", "gc", "--url", url, "--token", TOKEN, *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def wait_built(svc: BuilderProcess, build: dict[str, Any], user: str) -> dict[str, Any]:
    if build["status"] != "built":
        events = svc.events(build["id"], user=user, timeout=600)
        assert events[-1]["phase"] == "built", events[-8:]
    record = svc.get(f"api/builds/{build['id']}", user=user).json()
    assert record["status"] == "built", record
    return record


@pytest.mark.docker
@pytest.mark.slow
def test_thirty_builds_keep_two_per_repo_and_the_image_in_use(
    tmp_path: Path, git_server: GitServer, tiny_base: str, registry: Registry
) -> None:
    started = time.monotonic()
    path_prefix = f"fancy-env-gc-test-{secrets.token_hex(4)}/"
    host = f"127.0.0.1:{registry.port}"
    prefix = f"{host}/{path_prefix}"
    svc = BuilderProcess(
        tmp_path / "builder", executor="docker", env={"JUPYTERHUB_API_TOKEN": TOKEN},
        registry=host,  # the test's own registry (no auth): not the shared one's credentials
        config=f"""
        c.BuilderApp.image_prefix = {prefix!r}
        c.BuilderApp.max_concurrent_builds = 3
        c.BuilderApp.max_queued_per_user = 0  # one user queues all 30 (the cap has its test)
        c.BuilderApp.gc_keep_per_repo = {KEEP}
        c.BuilderApp.gc_max_unused_days = 0
        c.BuilderApp.gc_recent_seconds = 0
        c.BuilderApp.gc_registry_config = {str(registry.config)!r}
        """,
    )  # fmt: skip
    container = ""
    try:
        svc.start()
        # 3 repositories x 10 commits, each commit a different image (a COPY of its own file)
        repos = [git_server.create(f"gc{r}", {"README.md": "x"}) for r in range(REPOS)]
        builds: dict[int, list[dict[str, Any]]] = {r: [] for r in range(REPOS)}
        for i in range(COMMITS):
            for r, repo in enumerate(repos):
                repo.commit({
                    "Dockerfile": f"FROM {tiny_base}\nCOPY marker.txt /tmp/marker.txt\n",
                    "marker.txt": f"repository {r} commit {i}\n",
                })  # fmt: skip
                resp = svc.post(f"u{r}", repo.url)  # one user per repository: built in order
                assert resp.status_code in (200, 202), resp.text
                builds[r].append(resp.json())
        for r in range(REPOS):
            builds[r] = [wait_built(svc, b, f"u{r}") for b in builds[r]]
        built_at = time.monotonic()
        all_images = {b["image"] for r in builds for b in builds[r]}
        assert len(all_images) == REPOS * COMMITS
        assert engine_images(prefix) == all_images

        # in use: a container runs the 4th image of repository 0
        in_use = builds[0][3]["image"]
        container = subprocess.run(
            ["docker", "run", "-d", "--network", "none", "--entrypoint", "sleep", in_use, "600"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        expected = {b["image"] for r in builds for b in builds[r][-KEEP:]} | {in_use}
        removed = all_images - expected
        blobs_before = registry.blob_bytes()

        dry = fancy_env_gc(svc.url, "--dry-run")
        assert dry.returncode == 0, dry.stderr + dry.stdout
        lines = [line for line in dry.stdout.splitlines() if line.startswith("would remove ")]
        assert {line.split()[2] for line in lines} == removed
        assert f"total: would remove {len(removed)} image(s)" in dry.stdout
        assert engine_images(prefix) == all_images  # a dry run removes nothing
        assert sum(len(t) for t in registry.contents(path_prefix).values()) == len(all_images)

        real = fancy_env_gc(svc.url)
        gc_done = time.monotonic()
        assert real.returncode == 0, real.stderr + real.stdout
        assert {ln.split()[1] for ln in real.stdout.splitlines() if ln.startswith("removed ")} \
            == removed  # fmt: skip
        assert "registry garbage collection: done" in real.stdout, real.stdout
        print(dry.stdout.splitlines()[-1], "\n", real.stdout.splitlines()[-2:])

        assert engine_images(prefix) == expected
        want: dict[str, set[str]] = {}
        for image in expected:
            name, tag = image[len(host) + 1 :].rsplit(":", 1)
            want.setdefault(name, set()).add(tag)
        assert registry.contents(path_prefix) == want
        blobs_after = registry.blob_bytes()
        assert blobs_after < blobs_before
        print(f"registry blobs {blobs_before} -> {blobs_after} bytes")

        # a removed image asked for again: built again, not a cache hit from the memory
        old = builds[1][0]
        again = svc.post("u1", repos[1].url, ref=old["commit"]).json()
        assert again["status"] != "built" and not again["cache_hit"], again
        assert svc.get(f"api/builds/{old['id']}", user="u1").json()["status"] == "removed"
        # a launch of the removed build joins that build, waits for it, and starts from it
        confirmer = HTTPBuildConfirmer(svc.url, TOKEN, prefix, poll_interval=0.2)
        launched = asyncio.run(confirmer.confirm(old["id"], "u1"))
        assert launched.build_id == again["id"], launched
        assert launched.digest and launched.launch_image.endswith("@" + launched.digest)
        rebuilt = wait_built(svc, again, "u1")
        assert rebuilt["image"] == old["image"] and old["image"] in engine_images(prefix)
        # a kept image is still a cache hit
        kept = builds[2][-1]
        hit = svc.post("u2", repos[2].url, ref=kept["commit"]).json()
        assert hit["status"] == "built" and hit["cache_hit"], hit
        confirmed = asyncio.run(HTTPBuildConfirmer(svc.url, TOKEN, prefix).confirm(hit["id"], "u2"))
        assert confirmed.image == kept["image"]
        print(
            f"timing: 30 builds {built_at - started:.1f} s, gc (dry run + real) "
            f"{gc_done - built_at:.1f} s, total {time.monotonic() - started:.1f} s"
        )
    finally:
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        svc.stop()
        remove_engine_images(prefix)


# ---- the service's side with the fake executor (the images table is the cache) -----------


@pytest.fixture
def fake_builder(tmp_path: Path) -> Iterator[BuilderProcess]:
    svc = BuilderProcess(
        tmp_path / "builder", executor="fake", env={"JUPYTERHUB_API_TOKEN": TOKEN},
        config="""
        c.FakeExecutor.line_delay = 0
        c.BuilderApp.gc_keep_per_repo = 1
        c.BuilderApp.gc_recent_seconds = 0
        """,
    )  # fmt: skip
    svc.start()
    yield svc
    svc.stop()


def gc_json(svc: BuilderProcess, *args: str) -> dict[str, Any]:
    import json

    done = fancy_env_gc(svc.url, "--json", *args)
    assert done.returncode == 0, done.stderr + done.stdout
    return dict(json.loads(done.stdout))


def test_removed_image_is_built_again_and_links_protect(
    fake_builder: BuilderProcess, git_server: GitServer
) -> None:
    svc = fake_builder
    repo = git_server.create("env")
    builds = []
    for i in range(3):
        repo.commit({"f.txt": str(i)})
        build = svc.post("alice", repo.url).json()
        builds.append(wait_built(svc, build, "alice"))
    # an active environment link pins the first commit; a revoked one pins the second
    store = db.Blocking(lambda: LinkStore.open(f"sqlite:///{svc.state}/builds.sqlite"))
    for n, revoked in ((0, None), (1, time.time())):
        spec = LinkSpec(profile="p", repo=builds[n]["repo"], commit=builds[n]["commit"])
        link = Link(new_link_id(), hash_code(new_code()), "alice", spec, time.time(),
                    revoked_at=revoked)  # fmt: skip
        store.add(link)

    dry = gc_json(svc, "--dry-run")
    assert [i["image"] for i in dry["remove"]] == [builds[1]["image"]]
    reasons = {i["image"]: i["reason"] for i in dry["keep"]}
    assert reasons[builds[0]["image"]].startswith("in use: environment link")
    assert svc.get(f"api/builds/{builds[1]['id']}").json()["status"] == "built"

    real = gc_json(svc)
    assert [i["image"] for i in real["remove"]] == [builds[1]["image"]]
    assert svc.get(f"api/builds/{builds[1]['id']}").json()["status"] == "removed"
    # asked for again: a new build, not a cache hit; a kept one still hits the cache
    again = svc.post("alice", repo.url, ref=builds[1]["commit"]).json()
    assert again["status"] != "built" and not again["cache_hit"]
    assert wait_built(svc, again, "alice")["image"] == builds[1]["image"]
    # a launch of the removed build starts from the build that now serves its image
    confirmed = asyncio.run(HTTPBuildConfirmer(svc.url, TOKEN).confirm(builds[1]["id"], "alice"))
    assert confirmed.build_id == again["id"] and confirmed.image == builds[1]["image"]
    hit = svc.post("alice", repo.url, ref=builds[2]["commit"]).json()
    assert hit["cache_hit"] and hit["status"] == "built"


def test_schedule_runs_the_policy(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(
        tmp_path / "builder", executor="fake",
        config="""
        c.FakeExecutor.line_delay = 0
        c.BuilderApp.gc_keep_per_repo = 1
        c.BuilderApp.gc_recent_seconds = 0
        c.BuilderApp.gc_interval = 0.5
        """,
    )  # fmt: skip
    svc.start()
    try:
        repo = git_server.create("sched")
        first = wait_built(svc, svc.post("alice", repo.url).json(), "alice")
        repo.commit({"f.txt": "2"})
        second = wait_built(svc, svc.post("alice", repo.url).json(), "alice")
        status = lambda b: svc.get(f"api/builds/{b['id']}").json()["status"]  # noqa: E731
        wait_for(lambda: status(first) == "removed", timeout=20, what="the scheduled run")
        assert status(second) == "built"
        assert "image retention: removed 1 image(s)" in svc.log_path.read_text()
    finally:
        svc.stop()


def test_gc_refusals(fake_builder: BuilderProcess) -> None:
    svc = fake_builder
    r = requests.post(svc.url + "api/gc", json={}, headers=svc.headers("alice"), timeout=30)
    assert r.status_code == 403 and "admin" in r.json()["message"]
    r = requests.post(
        svc.url + "api/gc", json={"dry_run": "yes"}, headers=svc.headers("admin"), timeout=30
    )
    assert r.status_code == 400 and r.json().get("field") == "dry_run", r.text
    r = requests.post(
        svc.url + "api/gc", json={"everything": True}, headers=svc.headers("admin"), timeout=30
    )
    assert r.status_code == 400 and "dry_run" in r.json()["message"]
    usage = subprocess.run(
        [sys.executable, "-m", "fancy_env.cli", "gc"], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "JUPYTERHUB_API_TOKEN": ""},
    )  # fmt: skip
    assert usage.returncode == 2 and "--hub URL or --url" in usage.stderr


# ---- under a real hub: a running server's image survives (the hub API source) ------------


@pytest.mark.docker
@pytest.mark.slow
def test_running_server_keeps_its_image(
    hub_factory: Any, tmp_path: Path, git_server: GitServer, docker_engine: str
) -> None:
    """The engine is left out of retention here (gc_local_engine = False), so only the hub's
    answer (alice's server and the build it confirmed) protects the image in the registry."""
    import textwrap

    prefix = f"127.0.0.1:5000/fancy-env-gc-test-{secrets.token_hex(4)}/"
    builder = {"BuilderApp": {"gc_keep_per_repo": 1, "gc_recent_seconds": 0,
                              "gc_max_unused_days": 0, "gc_local_engine": False}}  # fmt: skip
    config = textwrap.dedent(f"""
    import fancy_env
    c.JupyterHub.spawner_class = "fancy_env.spawner_docker.FancyDockerSpawner"
    c.DockerSpawner.image = {docker_engine!r}
    c.DockerSpawner.remove = True
    c.DockerSpawner.prefix = "fancy-env-gctest"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 60
    c.FancyDockerSpawner.profile_list = [{{
        "display_name": "From a repository", "slug": "repo", "default": True,
        "kubespawner_override": {{"image": {docker_engine!r}}},
        "repository_build": {{"enabled": True}},
    }}]
    fancy_env.setup(c, state_dir={str(tmp_path / "fe")!r}, port={free_port()},
                    executor="docker", image_prefix={prefix!r}, allow_loopback_repos=True,
                    builder_config={builder!r})
    """)
    hub = hub_factory(config=config, base_url="/jh/", env={"PYTHONPATH": str(ROOT)})
    service = hub.url + "services/fancy-env/"
    wait_for(lambda: requests.get(service + "health", timeout=2).ok, timeout=30,
             what="build service behind the hub")  # fmt: skip
    alice = {"Authorization": f"token {hub.user_token('alice')}"}
    repo = git_server.create("hubgc", {"README.md": "x"})
    builds = []
    try:
        for i in range(3):
            repo.commit({"Dockerfile": f"FROM {docker_engine}\nLABEL fancy.gc.test={i}\n"})
            build = requests.post(service + "api/builds", json={"repo": repo.url},
                                  headers=alice, timeout=60).json()  # fmt: skip
            with requests.get(service + f"api/builds/{build['id']}/events", headers=alice,
                              stream=True, timeout=300) as r:  # fmt: skip
                list(r.iter_lines())
            builds.append(requests.get(service + f"api/builds/{build['id']}", headers=alice,
                                       timeout=30).json())  # fmt: skip
            assert builds[-1]["status"] == "built", builds[-1]
        oldest = builds[0]
        r = hub.api("POST", "/users/alice/server", json={"profile": "repo",
                                                          "build_id": oldest["id"]})  # fmt: skip
        assert r.status_code in (201, 202), r.text
        wait_for(lambda: hub.api("GET", "/users/alice").json()["servers"][""]["ready"],
                 timeout=150, what="alice's server from the oldest image")  # fmt: skip

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "fancy_env.cli", "gc", "--hub", hub.url,
             "--token", hub.admin_token, "--json"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        import json

        report = json.loads(done.stdout)
        assert [i["image"] for i in report["remove"]] == [builds[1]["image"]]
        keep = {i["image"]: i["reason"] for i in report["keep"]}
        assert keep[oldest["image"]] == "in use: running server alice/"
        name = oldest["image"].split("/", 1)[1].rsplit(":", 1)[0]
        tags = registry_get(f"/v2/{name}/tags/list").json()
        assert set(tags["tags"]) == {oldest["commit"], builds[2]["commit"]}
    finally:
        hub.stop_server("alice")
        remove_engine_images(prefix)
        delete_from_registry(prefix)
