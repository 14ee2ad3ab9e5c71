"""Inlining the frontend bundles (fancy_env/bundles.py), and the sharing service's building
page, which runs the shared TypeScript client and parser (frontend/src/building.ts) instead of
a parser of its own."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado.template import Loader

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
