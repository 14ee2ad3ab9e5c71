"""The sharing service's building page in a real Chromium: the rendered template with the
inlined `building.js` (frontend/src/building.ts: the shared fetch client and SSE parser)
follows the event stream, resumes a dropped stream with Last-Event-ID, and posts the launch
form once the build is built; a failed build is shown as such.

The service side is played by Playwright routes (every request of the page is answered in the
browser; nothing goes on the network). The live path, with a real hub, service and build, is
tests/e2e/test_sharing.py::test_follow_branch_builds_with_live_log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from fancy_env import bundles
from fancy_env.builder.events import make_event
from tests.support.browser import launch_chromium
from tests.unit.test_bundles import render_building

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (bundles.STATIC_DIR / "building.js").exists(), reason="run `npm run build` in frontend/"
    ),
]

ORIGIN = "http://127.0.0.1:9"  # never reached: the routes below answer every request
PAGE = "/jh/services/fancy-env/l/abc"
EVENTS = "/jh/services/fancy-env/api/builds/b1/events"


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = launch_chromium(p, chromium_path)
        yield b
        b.close()


def sse(*events: tuple[int, str, str]) -> str:
    return "retry: 500\n\n: keepalive\n\n" + "".join(
        make_event("b1", seq, phase, message, "img" if phase == "built" else None).sse()
        for seq, phase, message in events
    )


class FakeService:
    """Answers the page, its event stream (one answer per connection) and the launch POST."""

    def __init__(self, streams: list[str]) -> None:
        self.streams = streams
        self.stream_headers: list[dict[str, str]] = []
        self.launches: list[str] = []

    def __call__(self, route: Route) -> None:
        request = route.request
        path = request.url.removeprefix(ORIGIN)
        if path == PAGE:
            route.fulfill(content_type="text/html; charset=utf-8", body=render_building(EVENTS))
        elif path == EVENTS and self.streams:
            self.stream_headers.append(request.headers)
            route.fulfill(content_type="text/event-stream", body=self.streams.pop(0))
        elif path == EVENTS:
            route.fulfill(status=404, content_type="application/json",
                          body=json.dumps({"status": 404, "message": "no such build"}))  # fmt: skip
        elif path == PAGE + "/launch" and request.method == "POST":
            self.launches.append(request.post_data or "")
            route.fulfill(content_type="text/html", body="<p>launched</p>")
        else:
            route.abort()


def open_page(browser: Browser, service: FakeService) -> tuple[Page, Any]:
    context = browser.new_context()
    context.route("**/*", service)
    page = context.new_page()
    page.goto(ORIGIN + PAGE)
    return page, context


def test_follows_resumes_and_launches(browser: Browser) -> None:
    # the first connection ends after event 2 (a drop); the second resumes after it
    service = FakeService([sse((1, "fetching", "cloning"), (2, "building", "Step 1/2")),
                           sse((3, "pushing", "pushed"), (4, "built", ""))])  # fmt: skip
    page, context = open_page(browser, service)
    expect(page.get_by_text("launched")).to_be_visible(timeout=15_000)
    assert len(service.stream_headers) == 2
    assert "last-event-id" not in service.stream_headers[0]
    assert service.stream_headers[1]["last-event-id"] == "2"
    assert "action=launch" in service.launches[0] and "build_id=b1" in service.launches[0]
    context.close()


def test_shows_a_failed_build(browser: Browser) -> None:
    service = FakeService([sse((1, "building", "Step 1/2"), (2, "failed", "exit status 1"))])
    page, context = open_page(browser, service)
    status = page.get_by_role("status")
    expect(status).to_have_text("The build failed: exit status 1", timeout=15_000)
    expect(status).to_have_class("error")
    expect(page.get_by_label("build log")).to_have_text("Step 1/2\nexit status 1\n")
    assert service.launches == []
    context.close()
