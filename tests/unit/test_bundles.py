"""Inlining the frontend bundles (fancy_env/bundles.py), and the sharing service's building
page, which runs the shared TypeScript client and parser (frontend/src/building.ts) instead of
a parser of its own."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.template import Loader
from tornado.testing import bind_unused_port

from fancy_env import bundles

TEMPLATES = Path(bundles.__file__).parent / "sharing" / "templates"


@pytest.mark.parametrize(
    ("code", "safe"),
    [
        ('s="</script>"', 's="<\\/script>"'),
        ('s="</SCRIPT "', 's="<\\/SCRIPT "'),
        ('s="</style>"', 's="<\\/style>"'),
        ('s="<!--"', 's="<\\!--"'),
        ("a<b&&c>d", "a<b&&c>d"),
    ],
)
def test_close_safe(code: str, safe: str) -> None:
    assert bundles.close_safe(code) == safe


def test_inline_script_reads_and_escapes(tmp_path: Path) -> None:
    (tmp_path / "x.js").write_text('var s = "</script><!--";')
    assert bundles.inline_script("x.js", tmp_path) == 'var s = "<\\/script><\\!--";'


def test_inline_script_not_built(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = bundles.inline_script("building.js", tmp_path)
    assert text.startswith("/*") and text.endswith("*/") and "npm run build" in text
    assert "not built" in caplog.text


def render_building(events_url: str) -> str:
    page = (
        Loader(str(TEMPLATES))
        .load("building.html")
        .generate(
            _tt_modules=SimpleNamespace(xsrf_form_html=lambda: ""),
            title="Building the shared environment",
            link=SimpleNamespace(owner="alice"),
            spec=SimpleNamespace(repo="https://git.example/r.git", commit="", ref="main"),
            build_id="b1",
            events_url=events_url,
            launch_url="/jh/services/fancy-env/l/abc/launch",
            action="launch",
            hub_prefix="/jh/hub/",
            prefix="/jh/services/fancy-env/",
            user="bob",
        )
    )
    return page.decode()


@pytest.mark.skipif(
    not (bundles.STATIC_DIR / "building.js").exists(), reason="run `npm run build` in frontend/"
)
def test_building_page_inlines_the_shared_client() -> None:
    url = "/jh/services/fancy-env/api/builds/b%201/events"
    page = render_building(url)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 2
    bundle, call = scripts
    assert bundle.startswith("var fancyEnvBuilding=")  # the IIFE of frontend/src/building.ts
    assert "Last-Event-ID" in bundle and "text/event-stream" in bundle
    assert f'fancyEnvBuilding.watchBuild("{url}"' in call
    assert "Launching…" in call and "form.submit()" in call
    # no parser of its own left in the page
    assert "getReader" not in call and "data:" not in call


class _BuildingHandler(web.RequestHandler):
    def get(self) -> None:
        self.render(
            "building.html",
            title="Building",
            link=SimpleNamespace(owner="alice"),
            spec=SimpleNamespace(repo="https://git.example/r.git", commit="", ref="main"),
            build_id="b1",
            events_url="/s/api/builds/b1/events",
            launch_url="/s/l/abc/launch",
            action="launch",
            hub_prefix="/hub/",
            prefix="/s/",
            user="bob",
        )


@pytest.mark.skipif(
    not (bundles.STATIC_DIR / "building.js").exists(), reason="run `npm run build` in frontend/"
)
async def test_building_page_through_a_tornado_handler() -> None:
    """The same page rendered by a RequestHandler (XSRF module, autoescape) on loopback."""
    app = web.Application(
        [("/b", _BuildingHandler)], template_path=str(TEMPLATES), xsrf_cookies=True
    )
    server = HTTPServer(app)
    sock, port = bind_unused_port()  # 127.0.0.1
    server.add_sockets([sock])
    try:
        response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/b")
    finally:
        server.stop()
    page = response.body.decode()
    assert 'name="_xsrf"' in page
    assert "var fancyEnvBuilding=" in page and "&quot;" not in page.split("<script>")[1]
    assert 'fancyEnvBuilding.watchBuild("/s/api/builds/b1/events"' in page
