"""fancy_env.sharing.hubpage: the hub's page.html around the sharing pages (pure rendering)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fancy_env.sharing import hubpage

SVC = "/jh/services/fancy-env/"


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("alice", "alice"),
        ('a"b', 'a\\"b'),
        ("x</script><script>", "x\\u003c/script\\u003e\\u003cscript\\u003e"),
        ("a&b", "a\\u0026b"),
    ],
)
def test_json_escaped(name: str, escaped: str) -> None:
    assert hubpage.json_escaped(name) == escaped


@pytest.mark.parametrize(
    ("path", "section"),
    [
        (f"{SVC}links", "links"),
        (f"{SVC}share", "share"),
        (f"{SVC}share/work", "share"),
        (f"{SVC}l/abc", ""),
        ("/elsewhere/links", ""),
    ],
)
def test_current_section(path: str, section: str) -> None:
    assert hubpage.current_section(path, SVC) == section


@pytest.mark.parametrize(
    ("hub_prefix", "user", "expect"),
    [
        ("/hub/", None, {"prefix": "/", "user": None, "parsed_scopes": set()}),
        ("/jh/hub/", {"name": "al"}, {"prefix": "/jh/", "logout_url": "/jh/hub/logout"}),
        ("/hub/", {"name": "root", "admin": True}, {"parsed_scopes": {"admin-ui"}}),
        ("/hub/", {"name": "ui", "scopes": ["admin-ui", "x"]}, {"parsed_scopes": {"admin-ui"}}),
    ],
)
def test_namespace(hub_prefix: str, user: dict[str, Any] | None, expect: dict[str, Any]) -> None:
    ns = hubpage.namespace(hub_prefix, SVC, f"{SVC}links", user)
    assert (
        ns["base_url"] == hub_prefix
        and ns["static_url"]("css/x.css") == f"{hub_prefix}static/css/x.css"
    )
    for key, value in expect.items():
        assert ns[key] == value, key


def test_renders_inside_the_hubs_page() -> None:
    ns = hubpage.namespace("/jh/hub/", SVC, f"{SVC}share", {"name": "alice"})
    page = hubpage.render((), "Share", "<main><p>body & <b>html</b></p></main>", ns)
    assert '<nav class="navbar' in page and 'href="/jh/hub/home">Home</a>' in page
    assert "<main><p>body & <b>html</b></p></main>" in page  # the body is not escaped again
    assert 'aria-current="page"\n     href="/jh/services/fancy-env/share"' in page
    assert "/jh/hub/static/js/darkmode.js" in page


def test_admin_page_html_wins_and_a_broken_one_falls_back(tmp_path: Path) -> None:
    custom, broken = tmp_path / "custom", tmp_path / "broken"
    custom.mkdir()
    broken.mkdir()
    (custom / "page.html").write_text(
        '{% extends "templates/page.html" %}{% block logo %}CUSTOM-LOGO{% endblock %}'
    )
    (broken / "page.html").write_text("{% block main %}{% endblok %}")  # a syntax error
    ns = hubpage.namespace("/hub/", SVC, f"{SVC}links", {"name": "alice"})
    assert "CUSTOM-LOGO" in hubpage.render((str(custom),), "Links", "<main>x</main>", ns)
    plain = hubpage.render((str(broken),), "Links", "<main>x</main>", ns)
    assert "<main>x</main>" in plain and f'href="{SVC}links"' in plain
    assert 'class="navbar' not in plain
