"""The spawn form in a real browser against a real hub, the real build service and Docker.

Debian Chromium through Playwright. Every repository is served on loopback by `GitServer`
with a Dockerfile `FROM` the local single-user image and a unique marker, so each run builds
new images (and the cache test knows what to expect).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.a11y import unlabelled_controls
from tests.support.browser import launch_chromium
from tests.support.form_e2e import (
    MARKER,
    builder_get,
    form_config,
    login,
    running_containers,
    screenshot,
    start_hub,
)
from tests.support.gitserver import GitRepo, GitServer
from tests.support.hub import HubProcess
from tests.support.net import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

BUILD_MS = 300_000
START_MS = 180_000


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: str
) -> Iterator[tuple[HubProcess, str]]:
    hub, prefix = start_hub(tmp_path_factory.mktemp("form-hub"), docker_engine)
    hub.start()
    yield hub, prefix
    hub.stop()


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("form-git")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = launch_chromium(pw, chromium_path)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def env_repo(server: GitServer, image: str, name: str, extra: str = "") -> tuple[GitRepo, str]:
    """A buildable repository whose image writes a unique token to MARKER."""
    token = uuid.uuid4().hex[:12]
    repo = server.create(
        f"{name}-{token}",
        {"Dockerfile": f"FROM {image}\nRUN echo {token} > {MARKER}\n{extra}", "README.md": "x\n"},
    )
    return repo, token


def marker_of(page: Page, hub: HubProcess, user: str, server: str = "") -> str:
    """The marker file inside the running server, opened as a person would (the server's
    `files/` page, after its OAuth round trip with the hub)."""
    base = hub.url + f"user/{user}/" + (f"{server}/" if server else "")
    page.wait_for_url(base + "**", timeout=START_MS)
    response = page.goto(base + f"files/{Path(MARKER).name}")
    assert response is not None and response.ok, (response and response.status, page.url)
    return response.text().strip()


def test_pick_a_profile_and_start(
    hub: tuple[HubProcess, str], browser: Browser, artifacts: Path
) -> None:
    h, prefix = hub
    for scheme in ("dark", "light"):  # both of JupyterHub's Bootstrap themes
        ctx = browser.new_context(viewport={"width": 1100, "height": 820}, color_scheme=scheme)
        p = ctx.new_page()
        login(p, h, "alice")
        expect(p.get_by_role("group", name="Environment")).to_be_visible()
        theme = p.evaluate("document.documentElement.getAttribute('data-bs-theme')")
        assert theme == scheme
        assert unlabelled_controls(p) == []  # the same check as the sharing pages'
        screenshot(p, artifacts, f"form-{scheme}")
        if scheme == "dark":
            ctx.close()
    # the plain form is gone, the config holds no admin-only data
    assert p.locator("#fancy-env-plain").count() == 0
    cfg = form_config(p)
    assert "kubespawner_override" not in str(cfg) and "allowed_repos" not in str(cfg)
    group = p.get_by_role("group", name="Environment")
    group.get_by_role("radio", name=re.compile("Large")).check()
    p.get_by_role("button", name="Start", exact=True).click()
    p.wait_for_url("**/user/alice/**", timeout=START_MS)
    model = h.api("GET", "/users/alice").json()
    assert model["servers"][""]["ready"] is True
    assert model["servers"][""]["user_options"] == {"profile": "large"}
    assert any("alice" in c for c in running_containers(prefix))
    ctx.close()
    h.stop_server("alice")


def test_without_javascript_the_plain_form_starts_a_server(
    hub: tuple[HubProcess, str], browser: Browser
) -> None:
    h, _ = hub
    ctx = browser.new_context(java_script_enabled=False)
    p = ctx.new_page()
    try:
        login(p, h, "gina")
        p.goto(h.url + "hub/spawn")
        assert p.locator(".fancy-env-form").count() == 0
        plain = p.locator("#fancy-env-plain")
        plain.get_by_label("Custom image").fill("fancy-env/singleuser:latest")
        plain.get_by_label("Image", exact=True).select_option("unlisted-choice")
        p.get_by_role("button", name="Start", exact=True).click()
        # the spawn-pending page needs JavaScript to move on: ask the hub instead
        wait_for(
            lambda: h.api("GET", "/users/gina").json()["servers"][""]["ready"],
            180,
            "gina's server to be ready",
        )
        options = h.api("GET", "/users/gina").json()["servers"][""]["user_options"]
        assert options["profile"] == "small"
        assert options["image--unlisted-choice"] == "fancy-env/singleuser:latest"
    finally:
        ctx.close()
        h.stop_server("gina")


def test_build_and_start_then_cached_then_recent(
    hub: tuple[HubProcess, str],
    repos: GitServer,
    page: Page,
    docker_engine: str,
    artifacts: Path,
) -> None:
    h, _ = hub
    repo, token = env_repo(repos, docker_engine, "env", "RUN sleep 3\n")
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    login(page, h, "bob")
    ticket = form_config(page)["ticket"]
    assert ticket
    page.get_by_label("Repository URL").fill(repo.url)
    page.get_by_label("Branch, tag or commit").fill("main")
    page.get_by_role("button", name="Build and start", exact=True).click()
    # the live log and the progress bar, while the build runs
    expect(page.get_by_role("log", name="Build log")).to_contain_text("Step", timeout=BUILD_MS)
    expect(page.get_by_role("progressbar", name="Build progress")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel build")).to_be_visible()
    screenshot(page, artifacts, "form-building")
    assert (
        page.evaluate("localStorage.length + sessionStorage.length") == 0
    )  # the form stores nothing
    # one click: the form submits itself when the image is built
    page.wait_for_url("**/user/bob/**", timeout=BUILD_MS)
    # the ticket travelled in a header only: never in a URL, never in browser storage
    assert not [u for u in urls if ticket in u]
    # (JupyterLab, on the same origin, keeps its own settings in localStorage: look for the ticket)
    stored = page.evaluate(
        "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert ticket not in stored
    assert marker_of(page, h, "bob") == token
    options = h.api("GET", "/users/bob").json()["servers"][""]["user_options"]
    assert options["profile"] == "small" and options["build_id"]
    h.stop_server("bob")

    # the same repository again: the cached image starts at once, no event stream is read
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    page.goto(h.url + "hub/spawn")
    page.get_by_label("Repository URL").fill(repo.url)
    page.get_by_label("Branch, tag or commit").fill("main")
    page.get_by_role("button", name="Build and start", exact=True).click()
    page.wait_for_url("**/user/bob/**", timeout=START_MS)
    assert streams == []
    assert marker_of(page, h, "bob") == token
    h.stop_server("bob")

    # recent environments come from the server-side history: one click starts it again
    page.goto(h.url + "hub/spawn")
    short = repo.url.removeprefix("http://").removesuffix(".git")
    expect(page.get_by_role("button", name=f"Start {short} at main")).to_be_visible()
    screenshot(page, artifacts, "form-recent")
    # Share: an environment link pinned to this build, shown once
    page.get_by_role("button", name=f"Share {short} at main").click()
    link = page.get_by_role("textbox", name=f"Link to {short} at main")
    expect(link).to_have_value(re.compile(r"/services/fancy-env/"))
    page.get_by_role("button", name=f"Start {short} at main").click()
    page.wait_for_url("**/user/bob/**", timeout=START_MS)
    assert marker_of(page, h, "bob") == token
    h.stop_server("bob")


def test_refused_repository_and_failed_build_show_the_reason(
    hub: tuple[HubProcess, str],
    repos: GitServer,
    page: Page,
    docker_engine: str,
    artifacts: Path,
) -> None:
    h, _ = hub
    login(page, h, "carol")
    url = page.get_by_label("Repository URL")
    url.fill("ftp://127.0.0.1/nothing.git")
    page.get_by_role("button", name="Build and start", exact=True).click()
    expect(url).to_have_attribute("aria-invalid", "true")
    description = page.locator("#" + str(url.get_attribute("aria-describedby")))
    expect(description).to_contain_text("scheme 'ftp:' is not allowed")
    assert page.url.endswith("/hub/spawn")

    repo, _ = env_repo(repos, docker_engine, "broken", "RUN echo this step fails && exit 3\n")
    url.fill(repo.url)
    page.get_by_role("button", name="Build and start", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Build failed", timeout=BUILD_MS)
    expect(page.locator("#fe-build-failure")).to_be_visible()
    expect(page.get_by_role("log", name="Build log")).to_contain_text("this step fails")
    screenshot(page, artifacts, "form-failed")
    assert page.url.endswith("/hub/spawn")


def test_cancel_stops_the_build(
    hub: tuple[HubProcess, str], repos: GitServer, page: Page, docker_engine: str
) -> None:
    h, _ = hub
    repo, _ = env_repo(repos, docker_engine, "slow", "RUN echo sleeping && sleep 300\n")
    login(page, h, "dave")
    page.get_by_label("Repository URL").fill(repo.url)
    page.get_by_role("button", name="Build and start", exact=True).click()
    expect(page.get_by_role("log", name="Build log")).to_contain_text("sleeping", timeout=BUILD_MS)
    page.get_by_role("button", name="Cancel build").click()
    expect(page.get_by_role("status")).to_have_text("Build cancelled.", timeout=60_000)
    builds = builder_get(page, "api/builds?mine=1")
    assert builds["status"] == 200
    records = builds["body"]["builds"] if isinstance(builds["body"], dict) else builds["body"]
    mine = [b for b in records if b["repo"].startswith(repo.url.removesuffix(".git"))]
    assert [b["status"] for b in mine] == ["cancelled"]
    assert page.url.endswith("/hub/spawn")


def test_whole_path_by_keyboard_only(
    hub: tuple[HubProcess, str], repos: GitServer, page: Page, docker_engine: str
) -> None:
    h, _ = hub
    repo, token = env_repo(repos, docker_engine, "keys")
    login(page, h, "erin")
    kb = page.keyboard

    def tab_to(predicate: str, limit: int = 30) -> None:
        for _ in range(limit):
            kb.press("Tab")
            if page.evaluate(
                f"(() => {{ const el = document.activeElement; return {predicate}; }})()"
            ):
                return
        raise AssertionError(f"Tab never reached {predicate}")

    tab_to("el.name === 'profile'")  # the radio group of profile cards
    kb.press("ArrowRight")  # Small -> Large
    expect(page.get_by_role("radio", name=re.compile("Large"))).to_be_checked()
    tab_to("el.id === 'fe-repo'")
    kb.type(repo.url)
    kb.press("Enter")  # Enter in the repository field = Build and start
    page.wait_for_url("**/user/erin/**", timeout=BUILD_MS)
    assert marker_of(page, h, "erin") == token
    assert h.api("GET", "/users/erin").json()["servers"][""]["user_options"]["profile"] == "large"
    h.stop_server("erin")


def test_base_url_and_named_server(
    tmp_path: Path, repos: GitServer, page: Page, docker_engine: str
) -> None:
    h, _ = start_hub(tmp_path / "jh", docker_engine, base_url="/jh/")
    h.start()
    try:
        repo, token = env_repo(repos, docker_engine, "named")
        login(page, h, "frank")
        page.goto(h.url + "hub/spawn/frank/work")
        cfg = form_config(page)
        assert cfg["baseUrl"] == "/jh/" and cfg["builderUrl"] == "/jh/services/fancy-env/"
        assert cfg["serverName"] == "work" and cfg["spawnUrl"] == "/jh/hub/spawn/frank/work"
        page.get_by_label("Repository URL").fill(repo.url)
        page.get_by_role("button", name="Build and start", exact=True).click()
        page.wait_for_url("**/jh/user/frank/work/**", timeout=BUILD_MS)
        assert marker_of(page, h, "frank", "work") == token
        h.stop_server("frank", "work")
    finally:
        h.stop()
