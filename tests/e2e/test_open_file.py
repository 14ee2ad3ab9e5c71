"""Open a file after launch, end to end: real hub, real Docker (FancyDockerSpawner, an image
repo2docker builds from a loopback repository holding `notebooks/intro.ipynb`), Chromium.

alice shares the environment with `urlpath=lab/tree/notebooks/intro.ipynb`; bob opens the link,
logs in, launches, and lands in JupyterLab with that notebook open. Traversals and absolute
paths are refused with 400 naming the field, at link creation and at launch (the hub's REST
API and the spawn form); nothing is ever requested from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import sync_playwright

from tests.support.browser import fill_login, launch_chromium
from tests.support.builder import parse_sse
from tests.support.form_e2e import ROOT
from tests.support.gitserver import GitServer
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for
from tests.support.sharing import login

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

REGISTRY_PREFIX = "127.0.0.1:5000/fancy-env-open-e2e/"
SERVICE = "services/fancy-env/"
URLPATH = "lab/tree/notebooks/intro.ipynb"

HUB_CONFIG = """
import fancy_env
from fancy_env.sharing.hubsetup import enable_sharing
c.JupyterHub.spawner_class = "fancy_env.spawner_docker.FancyDockerSpawner"
c.DockerSpawner.image = {image!r}
c.DockerSpawner.remove = True
c.DockerSpawner.prefix = {prefix!r}
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 90
build = {{"enabled": True, "allowed_repos": [r"http://127\\.0\\.0\\.1:[0-9]+/.*"]}}
c.FancyDockerSpawner.profile_list = [
    {{"display_name": "Repository", "slug": "repo", "default": True,
      "kubespawner_override": {{"image": {image!r}}}, "repository_build": build}},
]
service = fancy_env.setup(c, port={builder_port}, state_dir={state!r},
                          image_prefix={registry!r}, allow_loopback_repos=True)
enable_sharing(c, service)
"""

NOTEBOOK = {
    "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Intro notebook marker"]}],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}

#: (field, value): traversals and absolute paths; never requested, only refused
BAD = [
    ("urlpath", "../../hub/admin"),
    ("urlpath", "%2e%2e/x"),
    ("urlpath", "/etc/passwd"),
    ("urlpath", "https://evil.example/x"),
    ("labpath", "../../hub/admin"),
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[HubProcess]:
    state = tmp_path_factory.mktemp("open-e2e")
    config = HUB_CONFIG.format(image=docker_engine, prefix=f"fancy-open-e2e-{free_port()}",
                               builder_port=free_port(), state=str(state / "builder"),
                               registry=REGISTRY_PREFIX)  # fmt: skip
    hub = HubProcess(state / "hub", config=config, env={"PYTHONPATH": str(ROOT)})
    hub.start()
    try:
        wait_for(lambda: requests.get(hub.url + SERVICE + "health", timeout=2).ok,
                 timeout=60, what="build service")  # fmt: skip
        for user in ("alice", "bob"):
            hub.api("POST", f"/users/{user}")
        yield hub
    finally:
        if hub.proc and hub.api("GET", "/users/bob").json().get("servers"):
            hub.stop_server("bob")
        hub.stop()


def service(hub: HubProcess, method: str, user: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"token {hub.user_token(user)}"}
    return requests.request(method, hub.url + SERVICE + path, headers=headers, timeout=600, **kw)


def build_notebook_repo(hub: HubProcess, git: GitServer, base_image: str) -> dict[str, Any]:
    copy = "COPY --chown=1000:1000 notebooks/ /home/jovyan/notebooks/"
    files = {"Dockerfile": f"FROM {base_image}\n{copy}\n"}
    files["notebooks/intro.ipynb"] = json.dumps(NOTEBOOK)
    repo = git.create("open-file", files)
    build = service(hub, "POST", "alice", "api/builds", json={"repo": repo.url}).json()
    with service(hub, "GET", "alice", f"api/builds/{build['id']}/events", stream=True) as stream:
        events = [m["data"] for m in parse_sse(stream.iter_lines(decode_unicode=True))
                  if "data" in m]  # fmt: skip
    assert events[-1]["phase"] == "built", events[-5:]
    return dict(service(hub, "GET", "alice", f"api/builds/{build['id']}").json())


def test_refused_at_link_creation(hub: HubProcess) -> None:
    for field, value in BAD:
        body = {"profile": "repo", field: value}
        r = service(hub, "POST", "alice", "api/links", json=body)
        assert r.status_code == 400, (field, value, r.text)
        assert r.json()["message"].startswith(f"{field}: "), r.text
    assert service(hub, "GET", "alice", "api/links").json()["links"] == []


def test_refused_at_launch(hub: HubProcess) -> None:
    bob = login(hub, "bob")
    for field, value in BAD:
        # the hub's REST API, with bob's own token
        r = requests.post(hub.url + "hub/api/users/bob/server", timeout=60,
                          headers={"Authorization": f"token {hub.user_token('bob')}"},
                          json={"profile": "repo", field: value})  # fmt: skip
        assert r.status_code == 400, (field, value, r.text)
        assert r.json()["message"].startswith(f"{field}: "), r.text
        # the spawn form's POST (the hub re-renders the form with the reason)
        bob.get(hub.url + "hub/spawn", timeout=60)
        xsrf = bob.cookies.get("_xsrf", path="/hub/") or ""
        data = {"profile": "repo", field: value, "_xsrf": xsrf}
        r = bob.post(hub.url + "hub/spawn", data=data, timeout=60)
        assert r.status_code == 400, (field, value, r.status_code)
        assert f"{field}: " in r.text
    assert not hub.api("GET", "/users/bob").json().get("servers")


def test_spawn_form_field_refuses_traversal(hub: HubProcess, chromium_path: str) -> None:
    """The form's "Open after launch" field posts `urlpath`; the hub shows the validator's
    reason naming it, and nothing starts."""
    with sync_playwright() as pw:
        browser = launch_chromium(pw, chromium_path)
        page = browser.new_page()
        page.goto(hub.url + f"hub/login?next={hub.base_url}hub/spawn")
        fill_login(page, "bob")
        page.get_by_label("Open after launch").fill("../../hub/admin")
        page.get_by_role("button", name="Start", exact=True).click()
        page.get_by_text("urlpath: must not contain '.' or '..' segments").wait_for()
        assert page.get_by_label("Open after launch").count() == 1  # the form, shown again
        browser.close()
    servers = hub.api("GET", "/users/bob").json().get("servers") or {}
    assert not any(s.get("ready") for s in servers.values())


def test_link_opens_the_notebook_in_jupyterlab(
    hub: HubProcess, docker_engine: str, chromium_path: str, tmp_path: Path, artifacts: Path
) -> None:
    git = GitServer(tmp_path / "git").start()
    try:
        build = build_notebook_repo(hub, git, docker_engine)
    finally:
        git.stop()
    r = service(hub, "POST", "alice", "api/links",
                json={"profile": "repo", "build_id": build["id"], "urlpath": URLPATH})  # fmt: skip
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["urlpath"] == URLPATH
    with sync_playwright() as pw:
        browser = launch_chromium(pw, chromium_path)
        page = browser.new_page()
        page.goto(hub.url + link["url"].lstrip("/"))
        fill_login(page, "bob")
        page.wait_for_url(lambda url: "/l/" in url, timeout=60_000)
        assert URLPATH in page.get_by_label("what will launch").inner_text()
        page.get_by_role("button", name="Launch").click()
        page.wait_for_url(f"**/user/bob/{URLPATH}", timeout=240_000)
        tab = page.get_by_role("tab", name=re.compile(r"intro\.ipynb"))
        tab.wait_for(timeout=120_000)
        heading = page.get_by_role("heading", name=re.compile("Intro notebook marker"))
        heading.first.wait_for(timeout=60_000)  # the notebook's rendered markdown cell
        page.wait_for_function("document.title.includes('intro.ipynb')", timeout=30_000)
        page.screenshot(path=str(artifacts / "open-file-jupyterlab.png"))
        browser.close()
