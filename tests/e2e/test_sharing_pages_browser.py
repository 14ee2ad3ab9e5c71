"""The sharing pages in the hub's look, in a real Chromium against a real hub (base_url /jh/)
and the real sharing service (JupyterHub's MockSpawner: these pages need a running server,
not a container).

Each page shows the hub's own navigation bar (Home, Token, Logout under the base_url, plus
the sharing items), follows the hub's Bootstrap theme in light and dark, names every control
for a screen reader (tests/support/a11y.py, as for the spawn form), and its main action works
with the keyboard alone. Screenshots go to docs/_static/screenshots/ with
FANCY_ENV_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from fancy_env.builder.events import make_event
from fancy_env.sharing import hubpage
from tests.support.a11y import tab_to, unlabelled_controls
from tests.support.browser import fill_login, launch_chromium
from tests.support.form_e2e import ROOT, screenshot
from tests.support.hub import HubProcess
from tests.support.net import wait_for
from tests.support.sharing import sharing_service_config

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BASE = "/jh/"
SERVICE = f"{BASE}services/fancy-env/"
PROFILES = [
    {"display_name": "Small", "slug": "small", "default": True,
     "profile_options": {"image": {"display_name": "Image", "choices": {
         "py311": {"display_name": "Python 3.11", "default": True},
         "r": {"display_name": "R"}}}}},
    {"display_name": "Large", "slug": "large"},
]  # fmt: skip
HUB_CONFIG = f"""
from fancy_env.sharing.hubsetup import HUB_TEMPLATES
c.JupyterHub.spawner_class = "jupyterhub.tests.mocking.MockSpawner"
c.JupyterHub.allow_named_servers = True
# the hub home page's sharing links, as enable_sharing(c, service) adds them
c.JupyterHub.template_paths = [HUB_TEMPLATES]
c.JupyterHub.template_vars = {{"fancy_env_sharing": {{"url": {SERVICE!r}, "share_servers": True}}}}
"""
SERVICE_CONFIG = f"c.FancyEnvSharing.profile_list = {PROFILES!r}\n"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    state = tmp_path_factory.mktemp("sharing-pages")
    config = HUB_CONFIG + sharing_service_config(state / "svc", SERVICE_CONFIG)
    h = HubProcess(state, config=config, base_url=BASE, env={"PYTHONPATH": str(ROOT)})
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = launch_chromium(pw, chromium_path)
        yield b
        b.close()


def new_context(browser: Browser, scheme: str) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1000, "height": 700}, color_scheme=scheme)
    context.set_default_timeout(30_000)
    return context


def login(context: BrowserContext, hub: HubProcess, user: str, next_path: str) -> Page:
    page = context.new_page()
    page.goto(f"{hub.url}hub/login?next={next_path}")
    fill_login(page, user)
    page.wait_for_url(f"**{next_path}")
    return page


def brightness(page: Page) -> int:
    rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return sum(int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])


def check_page(page: Page, scheme: str, current: str = "") -> None:
    """The hub's navigation bar under the base_url, the theme, a named main, named controls."""
    nav = page.locator("nav.navbar")
    expect(nav).to_be_visible()
    expect(nav.get_by_role("link", name="Home", exact=True)).to_have_attribute(
        "href", f"{BASE}hub/home"
    )
    expect(nav.get_by_role("link", name="Token", exact=True)).to_have_attribute(
        "href", f"{BASE}hub/token"
    )
    expect(nav.locator("#logout")).to_have_attribute("href", f"{BASE}hub/logout")
    expect(nav.locator("#login_widget")).to_contain_text("alice")
    for label, path in (("Environment links", "links"), ("Share a server", "share")):
        item = nav.get_by_role("link", name=label)
        expect(item).to_have_attribute("href", SERVICE + path)
        if path == current:
            expect(item).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("main").get_by_role("heading", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") == scheme
    light = brightness(page) > 600  # the hub stylesheet's body colour: white or near black
    assert light is (scheme == "light"), brightness(page)
    assert unlabelled_controls(page) == []


def test_pages_by_keyboard_in_the_hubs_look(
    hub: HubProcess, browser: Browser, artifacts: Path
) -> None:
    context = new_context(browser, "light")
    page = login(context, hub, "alice", f"{SERVICE}links")
    check_page(page, "light", "links")
    screenshot(page, artifacts, "sharing-links-light")
    # create a link by keyboard: the note field of "Share a profile", then its button
    tab_to(page, "el.name === 'note'")
    page.keyboard.type("by keyboard")
    tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Create link'")
    page.keyboard.press("Enter")
    url = page.locator("#new-link-url")
    expect(url).to_be_visible()
    check_page(page, "light", "links")
    link = url.input_value()
    assert link.startswith(f"http://127.0.0.1:{hub.port}{SERVICE}l/")
    # the link page: its Launch button by keyboard starts the server
    page.goto(link)
    check_page(page, "light")
    screenshot(page, artifacts, "sharing-link-light")
    tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Launch'")
    page.keyboard.press("Enter")
    wait_for(lambda: hub.api("GET", "/users/alice").json()["servers"].get("", {}).get("ready"),
             60, what="alice's server")  # fmt: skip
    # the spawn-pending page sends the browser on to the server: let it land before moving on
    page.wait_for_url(f"**{BASE}user/alice/**", timeout=60_000)
    # "Share" at hand on the hub home page once the server runs; it opens the share page
    page.goto(f"{hub.url}hub/home")
    screenshot(page, artifacts, "sharing-home-share-light")
    tab_to(page, "el.classList.contains('fancy-env-share-running')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{SERVICE}share")
    check_page(page, "light", "share")
    tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Create share code'")
    page.keyboard.press("Enter")
    expect(page.locator("#accept-url")).to_be_visible()
    check_page(page, "light", "share")
    screenshot(page, artifacts, "sharing-share-light")
    page.goto(f"{hub.url}services/fancy-env/l/no-such-code")
    expect(page.get_by_role("alert")).to_contain_text("does not exist")
    check_page(page, "light")
    context.close()

    dark = new_context(browser, "dark")
    page = login(dark, hub, "alice", f"{SERVICE}links")
    for path, name in (("links", "links"), ("share", "share"), (link, "link")):
        page.goto(path if path.startswith("http") else f"{hub.url}services/fancy-env/{path}")
        check_page(page, "dark", path if name != "link" else "")
        screenshot(page, artifacts, f"sharing-{name}-dark")
    page.locator("#dark-theme-toggle").click()  # the hub's own theme switch works here too
    assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") == "light"
    dark.close()
    hub.stop_server("alice")


def test_building_page_in_the_hubs_look(browser: Browser, artifacts: Path) -> None:
    """The building page (needs a build in progress: the browser answers the page, the hub's
    static files from the installed jupyterhub package, and the event stream)."""
    from tests.unit.test_bundles import render_building

    events = f"{SERVICE}api/builds/b1/events"
    body = render_building(events)
    ns = hubpage.namespace(f"{BASE}hub/", SERVICE, f"{SERVICE}l/abc", {"name": "alice"})
    html = hubpage.render((), "Building the shared environment", body, ns)
    static = Path(hubpage.hub_template_dir()).parent / "static"
    stream = "retry: 60000\n\n" + make_event("b1", 1, "building", "Step 1/2").sse()

    def answer(route: Route) -> None:
        path = route.request.url.split("127.0.0.1:9", 1)[1].split("?", 1)[0]
        if path == f"{BASE}hub/logo":  # the hub serves its logo outside static/
            route.fulfill(path=str(static / "images" / "jupyterhub-80.png"))
            return
        if path.startswith(f"{BASE}hub/static/"):
            file = static / path.removeprefix(f"{BASE}hub/static/")
            if file.is_file():
                route.fulfill(path=str(file))
                return
        if path == events:
            route.fulfill(body=stream, headers={"Content-Type": "text/event-stream"})
            return
        if path.endswith("/l/abc"):
            route.fulfill(body=html, headers={"Content-Type": "text/html; charset=utf-8"})
            return
        route.fulfill(status=404, body="")

    for scheme in ("light", "dark"):
        context = new_context(browser, scheme)
        context.route("**/*", answer)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:9{SERVICE}l/abc")
        expect(page.get_by_label("build log")).to_be_visible()
        check_page(page, scheme)
        screenshot(page, artifacts, f"sharing-building-{scheme}")
        context.close()


class _AttackerPage(BaseHTTPRequestHandler):
    """A page on another origin (another loopback port) that frames the service's pages."""

    target = ""

    def do_GET(self) -> None:
        body = f'<!doctype html><title>prize</title><iframe id="f" src="{self.target}"></iframe>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("path", ["links", "share", "api/links"])
def test_another_origin_cannot_frame_the_pages(
    hub: HubProcess, browser: Browser, path: str
) -> None:
    """Clickjacking: a logged-in user visits a page elsewhere that frames "Create link" or
    "Share a server" under a decoy. The browser refuses to render the framed page (the
    service sends `frame-ancestors 'self'`), so there is nothing to click."""
    context = new_context(browser, "light")
    page = login(context, hub, "alice", f"{SERVICE}links")  # the session cookie is in place
    target = f"{hub.url}services/fancy-env/{path}"
    handler = type("Attacker", (_AttackerPage,), {"target": target})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with page.expect_response(lambda r: r.url == target) as answer:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        assert answer.value.status == 200  # the cookie went along: the framed page is alice's
        frame = page.frame_locator("#f")
        expect(frame.locator("body")).not_to_contain_text("alice", timeout=3000)
        framed = [f for f in page.frames if f != page.main_frame]
        assert framed and not framed[0].url.startswith(hub.url), framed[0].url
    finally:
        server.shutdown()
        context.close()
