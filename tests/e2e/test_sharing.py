"""Sharing end to end: real hub, real Docker (FancyDockerSpawner + repo2docker builds pushed to
the loopback registry), real Chromium, two users.

One hub for the module; the tests run in order and build on each other's state (alice's build,
bob's running server), as a real session would.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from fancy_env.sharing.store import LinkStore
from tests.support import db
from tests.support.browser import fill_login, launch_chromium
from tests.support.builder import parse_sse
from tests.support.form_e2e import ROOT
from tests.support.gitserver import GitRepo, GitServer, dockerfile_repo_files
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

REGISTRY_PREFIX = "127.0.0.1:5000/fancy-env-share-e2e/"
SERVICE = "services/fancy-env/"

HUB_CONFIG = """
import fancy_env
from fancy_env.sharing.hubsetup import enable_sharing
c.JupyterHub.spawner_class = "fancy_env.spawner_docker.FancyDockerSpawner"
c.JupyterHub.allow_named_servers = True
c.JupyterHub.load_groups = {{"staff": {{"users": ["alice"]}}}}
c.DockerSpawner.image = {image!r}
c.DockerSpawner.remove = True
c.DockerSpawner.prefix = {prefix!r}
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 90
build = {{"enabled": True, "allowed_repos": [r"http://127\\.0\\.0\\.1:[0-9]+/.*"]}}
c.FancyDockerSpawner.profile_list = [
    {{"display_name": "Repository", "slug": "repo", "default": True,
      "kubespawner_override": {{"image": {image!r}}}, "repository_build": build}},
    {{"display_name": "Staff only", "slug": "staff", "allowed_groups": ["staff"],
      "kubespawner_override": {{"image": {image!r}}}, "repository_build": build}},
]
service = fancy_env.setup(c, port={builder_port}, state_dir={state!r},
                          image_prefix={registry!r}, allow_loopback_repos=True)
enable_sharing(c, service, options={{"stop_timeout": 120}})
"""


class World:
    """Shared state of the module: the hub, the repository, alice's build and links."""

    hub: HubProcess
    prefix: str
    base_image: str
    state: Path
    repo: GitRepo
    build: dict[str, Any]
    links: dict[str, dict[str, Any]]
    browser: Browser
    timings: dict[str, float]

    def token(self, user: str) -> str:
        return self.hub.user_token(user)

    def service(self, method: str, user: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token(user)}"}
        return requests.request(method, self.hub.url + SERVICE + path, headers=headers,
                                timeout=kw.pop("timeout", 60), **kw)  # fmt: skip

    def store(self) -> Any:
        """The link store, called synchronously (db.Blocking)."""
        url = f"sqlite:///{self.state / 'builder' / 'fancy-env-builds.sqlite'}"
        return db.Blocking(lambda: LinkStore.open(url))

    def servers(self, user: str) -> dict[str, Any]:
        return dict(self.hub.api("GET", f"/users/{user}").json().get("servers", {}))

    def container(self, user: str, server: str = "") -> tuple[str, str]:
        # DockerSpawner escapes the server name ('-' becomes '-2d'): match the user part
        name = f"^{self.prefix}-{user}--" if server else f"^{self.prefix}-{user}$"
        out = subprocess.run(["docker", "ps", "--filter", f"name={name}", "--format",
                              "{{.Names}} {{.Image}}"], capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
        assert out, f"no running container {name}"
        return out[0], self.image_of(out[0])

    def image_of(self, container: str) -> str:
        """The image a container runs, by ID (servers start `name@sha256:…`, launch by digest)."""
        return self._inspect("container", container, "{{.Image}}")

    def image_id(self, image: str) -> str:
        return self._inspect("image", image, "{{.Id}}")

    @staticmethod
    def _inspect(kind: str, what: str, fmt: str) -> str:
        command = ["docker", kind, "inspect", "--format", fmt, what]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    def marker(self, container: str) -> str:
        command = ["docker", "exec", container, "cat", "/tmp/fancy-env-marker"]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    def stop(self, user: str, server: str = "") -> None:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        self.hub.api("DELETE", path, json={"remove": bool(server)}, timeout=120)
        wait_for(lambda: server not in self.servers(user), timeout=120,
                 what=f"{user}/{server} to stop")  # fmt: skip

    def context(self, user: str | None = None) -> BrowserContext:
        ctx = self.browser.new_context()
        if user:
            page = ctx.new_page()
            page.goto(self.hub.url + f"hub/login?next={self.hub.base_url}hub/home")
            fill_login(page, user)
            page.close()
        return ctx


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    docker_engine: str,
    chromium_path: str,
) -> Iterator[World]:
    state = tmp_path_factory.mktemp("share-e2e")
    w = World()
    w.state = state
    w.base_image = docker_engine
    w.prefix = f"fancy-share-e2e-{free_port()}"
    config = HUB_CONFIG.format(image=docker_engine, prefix=w.prefix, builder_port=free_port(),
                               state=str(state / "builder"), registry=REGISTRY_PREFIX)  # fmt: skip
    w.hub = HubProcess(state / "hub", config=config, env={"PYTHONPATH": str(ROOT)})
    git = GitServer(state / "git").start()
    w.hub.start()
    w.links = {}
    w.timings = {}
    try:
        wait_for(lambda: requests.get(w.hub.url + SERVICE + "health", timeout=2).ok,
                 timeout=60, what="build service")  # fmt: skip
        for user in ("alice", "bob"):
            w.hub.api("POST", f"/users/{user}")
        w.repo = git.create("shared-env", dockerfile_repo_files(docker_engine, "v1"))
        with sync_playwright() as pw:
            w.browser = launch_chromium(pw, chromium_path)
            yield w
            w.browser.close()
    finally:
        for user in ("alice", "bob"):
            for name in w.servers(user) if w.hub.proc else {}:
                try:
                    w.stop(user, name)
                except Exception:  # noqa: BLE001 - best effort clean-up
                    pass
        w.hub.stop()
        git.stop()


def alice_builds(w: World) -> dict[str, Any]:
    r = w.service("POST", "alice", "api/builds", json={"repo": w.repo.url})
    assert r.status_code in (200, 202), r.text
    build = r.json()
    with requests.get(w.hub.url + SERVICE + f"api/builds/{build['id']}/events", stream=True,
                      headers={"Authorization": f"token {w.token('alice')}"},
                      timeout=600) as stream:  # fmt: skip
        events = [m["data"] for m in parse_sse(stream.iter_lines(decode_unicode=True))
                  if "data" in m]  # fmt: skip
    assert events[-1]["phase"] == "built", events[-5:]
    done = w.service("GET", "alice", f"api/builds/{build['id']}").json()
    assert done["status"] == "built" and done["image"]
    return dict(done)


def create_link(w: World, body: dict[str, Any]) -> dict[str, Any]:
    r = w.service("POST", "alice", "api/links", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def wait_server_page(page: Page, w: World, user: str, server: str = "") -> None:
    path = f"{w.hub.base_url}user/{user}/" + (f"{server}/" if server else "")
    page.wait_for_url(lambda url: path in url, timeout=240_000)
    page.wait_for_load_state()


def test_link_pins_commit_and_image(w_fixture: World) -> None:
    w = w_fixture
    w.build = alice_builds(w)
    # alice shares it from her recent environments (the "Environment links" page)
    alice = w.context("alice")
    apage = alice.new_page()
    apage.goto(w.hub.url + SERVICE + "links")
    row = apage.get_by_role("form", name=f"share {w.repo.url} at {w.build['commit'][:12]}")
    row.get_by_role("button", name="Create link").click()
    full_url = apage.get_by_role("textbox", name="Link", exact=True).input_value()
    alice.close()
    mine = w.service("GET", "alice", "api/links").json()["links"]
    link = {**mine[0], "full_url": full_url}
    assert link["commit"] == w.build["commit"] and not link["follow_branch"]
    w.links["pinned"] = link

    ctx = w.context()  # bob, logged out
    page = ctx.new_page()
    page.goto(link["full_url"])
    assert "/hub/login" in page.url  # whatever the login URL, the service's OAuth returns here
    fill_login(page, "bob")
    page.wait_for_url(lambda url: "/l/" in url, timeout=60_000)
    details = page.get_by_label("what will launch")
    for words in ("alice", w.build["commit"], w.repo.url, "Repository (repo)"):
        assert words in details.inner_text(), words
    started = time.monotonic()
    page.get_by_role("button", name="Launch").click()
    wait_server_page(page, w, "bob")
    w.timings["link launch, image reused: click to server page (s)"] = time.monotonic() - started
    name, image = w.container("bob")
    assert image == w.image_id(w.build["image"])
    assert w.marker(name) == "v1"

    # alice's repository moves on; the link still launches the same image at the same commit
    w.repo.commit(dockerfile_repo_files(w.base_image, "v2"), message="v2")
    w.stop("bob")
    page.goto(link["full_url"])
    page.get_by_role("button", name="Launch").click()
    wait_server_page(page, w, "bob")
    name, image = w.container("bob")
    assert image == w.image_id(w.build["image"]) and w.marker(name) == "v1"
    assert w.service("GET", "alice", f"api/links/{link['id']}").json()["launches"] == 2
    ctx.close()


def test_running_server_choices(w_fixture: World) -> None:
    w = w_fixture
    link = w.links["pinned"]
    assert w.servers("bob").get("", {}).get("ready")  # from the previous test
    ctx = w.context("bob")
    page = ctx.new_page()
    page.goto(link["full_url"])
    assert page.get_by_text("You already have a server running").is_visible()
    # open it
    page.get_by_role("link", name="Open my running server").click()
    wait_server_page(page, w, "bob")
    # launch as a new named server, next to the running one
    page.goto(link["full_url"])
    page.get_by_role("button", name="Launch as a new named server").click()
    named = f"shared-{link['id'][:8]}"
    wait_server_page(page, w, "bob", named)
    assert w.container("bob", named)[1] == w.image_id(w.build["image"])
    assert w.servers("bob")[""]["ready"]
    # stop it and launch
    before = w.servers("bob")[""]["started"]
    page.goto(link["full_url"])
    page.get_by_role("button", name="Stop it and launch this environment").click()
    wait_server_page(page, w, "bob")
    assert w.servers("bob")[""]["started"] != before
    assert w.container("bob")[1] == w.image_id(w.build["image"])
    w.stop("bob", named)
    ctx.close()


def test_revoked_expired_and_forbidden(w_fixture: World) -> None:
    w = w_fixture
    revoked = create_link(w, {"profile": "repo", "build_id": w.build["id"]})
    expired = create_link(w, {"profile": "repo", "build_id": w.build["id"]})
    staff = create_link(w, {"profile": "staff", "build_id": w.build["id"]})
    # alice manages her links on the Environment links page: revoke one, change an expiry
    alice = w.context("alice")
    apage = alice.new_page()
    apage.goto(w.hub.url + SERVICE + "links")

    def link(link_id: str) -> dict[str, Any]:
        return dict(w.service("GET", "alice", f"api/links/{link_id}").json())

    row = apage.locator(f'tr[data-link-id="{expired["id"]}"]')
    row.get_by_label("Expiry").select_option(label="1 day from now")
    day = time.time() + 86400
    wait_for(lambda: abs(link(expired["id"])["expires_at"] - day) < 60, timeout=10,
             what="the new expiry")  # fmt: skip
    row = apage.locator(f'tr[data-link-id="{revoked["id"]}"]')
    row.get_by_role("button", name="Revoke").click()
    wait_for(lambda: link(revoked["id"])["state"] == "revoked", timeout=10,
             what="the link to be revoked")  # fmt: skip
    alice.close()
    w.store().update(expired["id"], expires_at=time.time() - 1)
    ctx = w.context("bob")
    page = ctx.new_page()
    response = page.goto(revoked["full_url"])
    assert response is not None and response.status == 404
    assert page.get_by_role("alert").inner_text().startswith("This environment link does not")
    response = page.goto(expired["full_url"])
    assert response is not None and response.status == 410
    assert "expired on" in page.get_by_role("alert").inner_text()
    started = w.servers("bob")[""]["started"]
    response = page.goto(staff["full_url"])
    assert response is not None and response.status == 403
    assert "profile" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("button", name="Launch").count() == 0
    assert w.servers("bob")[""]["started"] == started  # nothing was launched
    ctx.close()


def test_follow_branch_builds_with_live_log(w_fixture: World, artifacts: Path) -> None:
    """A link that follows the branch launches its newest commit; an unbuilt commit is built
    first, with the live log on the page, then launched (here replacing bob's server)."""
    w = w_fixture
    head = w.repo.commit(dockerfile_repo_files(w.base_image, "v3"), message="v3")
    link = create_link(w, {"profile": "repo", "repo": w.repo.url, "ref": "main",
                           "follow_branch": True})  # fmt: skip
    ctx = w.context("bob")
    page = ctx.new_page()
    page.goto(link["full_url"])
    assert "the latest commit at launch" in page.get_by_label("what will launch").inner_text()
    started = time.monotonic()
    page.get_by_role("button", name="Stop it and launch this environment").click()
    log = page.get_by_label("build log")
    log.wait_for(timeout=60_000)
    page.wait_for_function("document.getElementById('log').textContent.length > 0",
                           timeout=120_000)  # fmt: skip
    page.screenshot(path=str(artifacts / "sharing-link-building.png"), full_page=True)
    wait_server_page(page, w, "bob")
    w.timings["follow-branch link, new commit: click to server page incl. build (s)"] = (
        time.monotonic() - started
    )
    lines = [f"{name}: {value:.1f}" for name, value in w.timings.items()]
    (artifacts / "sharing-timings.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    name, image = w.container("bob")
    built_at_head = w.build["image"].rsplit(":", 1)[0] + ":" + head  # tag = resolved commit
    assert image == w.image_id(built_at_head)
    assert w.marker(name) == "v3"
    ctx.close()


def test_share_running_server(w_fixture: World, artifacts: Path) -> None:
    w = w_fixture
    r = w.hub.api("POST", "/users/alice/server",
                  json={"profile": "repo", "build_id": w.build["id"]})  # fmt: skip
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: w.servers("alice").get("", {}).get("ready"), timeout=180,
             what="alice's server")  # fmt: skip
    alice = w.context("alice")
    apage = alice.new_page()
    apage.goto(w.hub.url + SERVICE + "share")
    apage.get_by_label("Expires after").select_option(label="1 hour")
    apage.get_by_role("button", name="Create share code").click()
    accept_url = apage.get_by_label("Accept URL").input_value()
    assert "/hub/accept-share?code=" in accept_url
    apage.screenshot(path=str(artifacts / "sharing-share-server.png"), full_page=True)

    bob = w.context("bob")
    bpage = bob.new_page()
    bpage.goto(accept_url)
    bpage.get_by_role("button", name="Accept invitation").click()
    # the first visit to someone else's server asks bob to let it identify him (JupyterHub's
    # own OAuth consent page for shared servers)
    bpage.wait_for_url(lambda url: "/oauth2/authorize" in url or "/user/alice/" in url)
    if "/oauth2/authorize" in bpage.url:
        bpage.get_by_role("button", name="Authorize").click()
    wait_server_page(bpage, w, "alice")
    assert bpage.url.startswith(w.hub.url + "user/alice/")

    apage.goto(w.hub.url + SERVICE + "share")
    rows = apage.get_by_role("table", name="active share codes").get_by_role("row")
    assert rows.count() == 2  # header + the code
    apage.get_by_role("button", name="Revoke").click()
    assert apage.get_by_role("status").inner_text().startswith("The code was revoked")
    response = bpage.goto(accept_url)
    assert response is not None and response.status == 404
    alice.close()
    bob.close()


@pytest.fixture(scope="module")
def w_fixture(world: World) -> World:
    return world
