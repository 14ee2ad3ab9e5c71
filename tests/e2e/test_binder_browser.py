"""A Binder launch URL end to end: real hub, real Docker (FancyDockerSpawner), a repository
on a loopback Git server that repo2docker builds, Chromium.

A logged-out browser opens `<hub>/v2/git/<url-encoded loopback repo>/main?labpath=README.md`
(the shape of a mybinder.org badge with the host swapped), logs in, sees the confirmation
page (repository, ref, the file; every control named), presses Launch from the keyboard,
watches the live build log, and lands in JupyterLab with README.md open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from tests.support.a11y import tab_to, unlabelled_controls
from tests.support.browser import fill_login, launch_chromium
from tests.support.form_e2e import ROOT
from tests.support.gitserver import GitServer
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

REGISTRY_PREFIX = "127.0.0.1:5000/fancy-env-binder-e2e/"
SERVICE = "services/fancy-env/"
MARKER = "Binder badge marker"

HUB_CONFIG = """
import fancy_env
from fancy_env.sharing.binder_setup import enable_binder
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
enable_binder(c, service)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[HubProcess]:
    state = tmp_path_factory.mktemp("binder-e2e")
    config = HUB_CONFIG.format(image=docker_engine, prefix=f"fancy-binder-e2e-{free_port()}",
                               builder_port=free_port(), state=str(state / "builder"),
                               registry=REGISTRY_PREFIX)  # fmt: skip
    hub = HubProcess(state / "hub", config=config, env={"PYTHONPATH": str(ROOT)})
    hub.start()
    try:
        wait_for(lambda: requests.get(hub.url + SERVICE + "health", timeout=2).ok,
                 timeout=60, what="build service")  # fmt: skip
        hub.api("POST", "/users/bob")
        yield hub
    finally:
        if hub.proc and hub.api("GET", "/users/bob").json().get("servers"):
            hub.api("DELETE", "/users/bob/server", timeout=120)
            wait_for(lambda: not hub.api("GET", "/users/bob").json().get("servers"),
                     timeout=120, what="bob's server to stop")  # fmt: skip
        hub.stop()


def test_binder_url_launches_through_login_with_the_file_open(
    hub: HubProcess, docker_engine: str, chromium_path: str, tmp_path: Path, artifacts: Path
) -> None:
    git = GitServer(tmp_path / "git").start()
    try:
        dockerfile = f"FROM {docker_engine}\nCOPY --chown=1000:1000 README.md /home/jovyan/\n"
        repo = git.create("binder-e2e", {"Dockerfile": dockerfile, "README.md": f"# {MARKER}\n"})
        url = f"{hub.url}v2/git/{quote(repo.url, safe='')}/main?labpath=README.md"
        with sync_playwright() as pw:
            browser = launch_chromium(pw, chromium_path)
            page = browser.new_page()
            page.goto(url)  # logged out: the hub's login page
            fill_login(page, "bob")
            page.wait_for_url(lambda u: f"/{SERVICE}v2/git/" in u, timeout=60_000)
            shown = page.get_by_label("what will launch").inner_text()
            assert repo.url in shown and "main" in shown and "lab/tree/README.md" in shown
            page.screenshot(path=str(artifacts / "binder-confirm.png"))
            assert unlabelled_controls(page) == []
            # the keyboard alone reaches Launch and presses it
            tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Launch'")
            page.keyboard.press("Enter")
            log = page.get_by_label("build log")
            log.wait_for(timeout=60_000)
            page.wait_for_function(
                "document.getElementById('log').textContent.includes('Step')", timeout=240_000
            )  # the live log of repo2docker's build
            page.wait_for_url("**/user/bob/lab/tree/README.md", timeout=300_000)
            tab = page.get_by_role("tab", name=re.compile(r"README\.md"))
            tab.wait_for(timeout=120_000)
            page.get_by_text(MARKER).first.wait_for(timeout=60_000)
            page.wait_for_function("document.title.includes('README.md')", timeout=30_000)
            page.screenshot(path=str(artifacts / "binder-jupyterlab.png"))
            browser.close()
    finally:
        git.stop()
    options = hub.api("GET", "/users/bob").json()["servers"][""]["user_options"]
    assert options["urlpath"] == "lab/tree/README.md" and options["profile"] == "repo"


def _check_hub_look(page: Page, scheme: str, user: str) -> None:
    """The hub's navigation bar, its Bootstrap theme in `scheme`, every control named."""
    nav = page.locator("nav.navbar")
    expect(nav).to_be_visible()
    for name, path in (("Home", "/hub/home"), ("Token", "/hub/token")):
        expect(nav.get_by_role("link", name=name, exact=True)).to_have_attribute("href", path)
    expect(nav.locator("#login_widget")).to_contain_text(user)
    expect(page.get_by_role("main").get_by_role("heading", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") == scheme
    rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
    light = sum(int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]) > 600
    assert light is (scheme == "light"), rgb
    assert unlabelled_controls(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_credentials_and_binder_pages_in_the_hubs_look(
    hub: HubProcess, chromium_path: str, tmp_path: Path, artifacts: Path, scheme: str
) -> None:
    """The pages issue 12 added pass the form's checks: the hub's navigation in light and
    dark, named controls, and their main action by keyboard alone."""
    git = GitServer(tmp_path / "git").start()
    try:
        repo = git.create("look", {"README.md": "# look\n"})
        with sync_playwright() as pw:
            browser = launch_chromium(pw, chromium_path)
            context = browser.new_context(color_scheme=scheme)
            page = context.new_page()
            page.goto(f"{hub.url}{SERVICE}credentials")
            fill_login(page, "dora")
            page.wait_for_url(f"**/{SERVICE}credentials", timeout=60_000)
            _check_hub_look(page, scheme, "dora")
            tab_to(page, "el.name === 'host'")
            page.keyboard.type(git.base_url)
            tab_to(page, "el.name === 'token'")
            page.keyboard.type("look-and-feel-token-1")
            tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Store'")
            page.keyboard.press("Enter")
            table = page.get_by_role("table", name="your credentials")
            expect(table).to_contain_text(git.base_url.split("//", 1)[1])
            assert "look-and-feel-token-1" not in page.content()  # never shown again
            _check_hub_look(page, scheme, "dora")
            page.screenshot(path=str(artifacts / f"credentials-{scheme}.png"))
            page.goto(f"{hub.url}v2/git/{quote(repo.url, safe='')}/main?urlpath=lab")
            page.wait_for_url(lambda u: f"/{SERVICE}v2/git/" in u, timeout=60_000)
            _check_hub_look(page, scheme, "dora")
            page.screenshot(path=str(artifacts / f"binder-confirm-{scheme}.png"))
            browser.close()
    finally:
        git.stop()
