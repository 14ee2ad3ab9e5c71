"""fancy_env.form: the options_form HTML, its config JSON and the plain form's field names."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pytest

from fancy_env import form, tickets
from fancy_env.profiles import parse_profile_list, visible_profiles

BUNDLE = form.bundle  # the real one, before the fixture replaces it
SECRET = "00ff" * 16  # hex, as fancy_env.setup(c) shares it with the build service

PROFILE_LIST: list[dict[str, Any]] = [
    {
        "display_name": "Small",
        "slug": "small",
        "description": "1 CPU, 2 GB",
        "default": True,
        "kubespawner_override": {"cpu_limit": 1, "secret_env": "ADMIN-ONLY-1"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "py311": {
                        "display_name": "Python 3.11",
                        "default": True,
                        "kubespawner_override": {"image": "ADMIN-ONLY-2"},
                    },
                    "gpu": {
                        "display_name": "GPU",
                        "allowed_groups": ["gpu-users"],
                        "kubespawner_override": {"image": "ADMIN-ONLY-3"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Custom image",
                    "validation_regex": r"quay\.io/[a-z]+:[0-9]+",
                    "validation_message": "a quay.io image",
                    "kubespawner_override": {"image": "{value}", "x": "ADMIN-ONLY-4"},
                },
            }
        },
    },
    {
        "display_name": "From a repository",
        "slug": "repo",
        "repository_build": {
            "enabled": True,
            "allowed_repos": [r"ADMIN-ONLY-5\.example/.*"],
            "kubespawner_override": {"mem_limit": "ADMIN-ONLY-6"},
        },
    },
    {
        "display_name": "Staff only",
        "slug": "staff",
        "allowed_groups": ["staff"],
        "kubespawner_override": {"image": "ADMIN-ONLY-7"},
    },
]


@pytest.fixture(autouse=True)
def fake_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests do not depend on `npm run build` having run."""
    monkeypatch.setattr(form, "bundle", lambda *a: ("/* js */", "/* css */"))


def spawner(
    base_url: str = "/", server: str = "", builder: str = "/services/fancy-env/",
    may_build: bool = True,
) -> Any:  # fmt: skip
    rights = (frozenset({tickets.BUILD_SCOPE}), ("staff",)) if may_build else None
    return SimpleNamespace(
        fancy_build_rights=lambda: rights,
        user=SimpleNamespace(name="alice"),
        hub=SimpleNamespace(base_url=base_url + "hub/"),
        name=server,
        builder_url=builder,
        ticket_secret=SECRET,
        ticket_ttl=600,
    )


def render(saved: dict[str, Any] | None = None, **kw: Any) -> str:
    profiles = visible_profiles(parse_profile_list(PROFILE_LIST), "alice", set())
    return form.render_options_form(spawner(**kw), profiles, saved)


def config_of(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="fancy-env-config">(.*?)</script>', page)
    assert m, "no config script"
    return dict(json.loads(m.group(1)))


class Fields(HTMLParser):
    """Names of the form controls of the plain form (#fancy-env-plain)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.labels: set[str] = set()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("input", "select") and a.get("name"):
            self.names.append(str(a["name"]))
            self.ids.add(str(a.get("id")))
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))


def plain_part(page: str) -> str:
    return page.split('<div id="fancy-env-form">')[0]


def test_config_has_no_admin_only_data() -> None:
    page = render()
    cfg = config_of(page)
    text = json.dumps(cfg)
    assert "ADMIN-ONLY" not in page
    for word in (
        "kubespawner_override",
        "allowed_groups",
        "allowed_users",
        "allowed_repos",
        "override",
        "gpu",
        "staff",
    ):
        assert word not in text, word


def test_config_shape() -> None:
    cfg = config_of(render(base_url="/jh/", server="gpu box", builder="/jh/services/fancy-env/"))
    assert cfg["baseUrl"] == "/jh/"
    assert cfg["builderUrl"] == "/jh/services/fancy-env/"
    assert cfg["spawnUrl"] == "/jh/hub/spawn/alice/gpu%20box"
    assert cfg["serverName"] == "gpu box"
    assert cfg["user"] == "alice"
    assert tickets.verify(bytes.fromhex(SECRET), cfg["ticket"]) == "alice"
    small, repo = cfg["profiles"]
    assert small == {
        "slug": "small",
        "displayName": "Small",
        "description": "1 CPU, 2 GB",
        "default": True,
        "options": [
            {
                "name": "image",
                "displayName": "Image",
                "choices": [{"key": "py311", "displayName": "Python 3.11", "default": True}],
                "unlisted": {
                    "enabled": True,
                    "displayName": "Custom image",
                    "displayNameInChoices": "Other...",
                    "validationRegex": r"quay\.io/[a-z]+:[0-9]+",
                    "validationMessage": "a quay.io image",
                },
            }
        ],
        "repositoryBuild": {"enabled": False},
    }
    assert repo["repositoryBuild"] == {"enabled": True}


def test_ticket_carries_scope_and_groups() -> None:
    claims = tickets.verify_claims(bytes.fromhex(SECRET), config_of(render())["ticket"])
    assert claims.scopes == {tickets.BUILD_SCOPE} and claims.groups == ("staff",)


def test_no_build_scope_no_ticket_no_repository_panel() -> None:
    """A user without custom:fancy-env:build gets no ticket, so no repository panel and no
    build-id field in the plain form."""
    page = render(may_build=False)
    cfg = config_of(page)
    assert cfg["ticket"] == ""
    assert all(not p["repositoryBuild"]["enabled"] for p in cfg["profiles"])
    assert 'name="build_id"' not in page


def test_no_builder_url_hides_builds_and_ticket() -> None:
    cfg = config_of(render(builder=""))
    assert cfg["ticket"] == ""
    assert all(not p["repositoryBuild"]["enabled"] for p in cfg["profiles"])


def test_plain_form_field_names_and_labels() -> None:
    parser = Fields()
    parser.feed(plain_part(render()))
    assert parser.names == [
        "profile",
        "profile-option-small--image",
        "profile-option-small--image--unlisted-choice",
        "profile",
        "build_id",
    ]
    assert parser.ids <= parser.labels, "every control has a <label for>"


@pytest.mark.parametrize(
    ("saved", "expected"),
    [
        (None, {}),
        ({"profile": "small", "image": "py311"}, {"profile": "small", "image": "py311"}),
        (
            {"profile": "small", "image--unlisted-choice": "quay.io/a:1", "junk": "x"},
            {"profile": "small", "image--unlisted-choice": "quay.io/a:1"},
        ),
        ({"profile": "staff"}, {}),  # not visible to alice any more
        ({"profile": "repo", "build_id": "b1"}, {"profile": "repo"}),
        ({"profile": "small", "image": 3}, {"profile": "small"}),
    ],
)
def test_saved_options(saved: dict[str, Any] | None, expected: dict[str, str]) -> None:
    assert config_of(render(saved))["saved"] == expected


@pytest.mark.parametrize(
    ("saved", "selected"),
    [
        (None, 'value="py311" selected'),
        (
            {"profile": "small", "image--unlisted-choice": "quay.io/a:1"},
            'value="unlisted-choice" selected',
        ),
    ],
)
def test_plain_form_restores_saved(saved: dict[str, Any] | None, selected: str) -> None:
    assert selected in plain_part(render(saved))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("</script><script>alert(1)</script>", "\\u003c/script\\u003e"),
        ("a & b", "a \\u0026 b"),
    ],
)
def test_script_json_cannot_close_the_element(value: str, expected: str) -> None:
    out = form.script_json({"x": value})
    assert "</" not in out and expected in out
    assert json.loads(out) == {"x": value}


def test_bundle_is_inlined_and_cannot_close_its_script(tmp_path: Any) -> None:
    (tmp_path / "form.js").write_text('var s="</script>";')
    (tmp_path / "form.css").write_text("a{color:red}")
    js, css = BUNDLE(tmp_path) or ("", "")
    assert js == 'var s="<\\/script>";' and css == "a{color:red}"
    assert BUNDLE(tmp_path / "missing") is None
    page = form.page_html([], {}, {"profiles": []}, (js, css))
    assert '<script id="fancy-env-form-js">var s="<\\/script>";</script>' in page


def test_plain_form_only_when_bundle_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(form, "bundle", lambda *a: None)
    page = render()
    assert 'id="fancy-env-plain"' in page and "fancy-env-config" not in page


@pytest.mark.parametrize(
    ("hub_base", "expected"),
    [("/hub/", "/"), ("/jh/hub/", "/jh/"), ("/a/b/hub/", "/a/b/")],
)
def test_base_url_from_hub(hub_base: str, expected: str) -> None:
    s = SimpleNamespace(hub=SimpleNamespace(base_url=hub_base))
    assert form._base_url(s) == expected


@pytest.mark.parametrize(
    ("secret", "key"),
    [("00ff", b"\x00\xff"), ("not hex!", b"not hex!")],
)
def test_secret_bytes(secret: str, key: bytes) -> None:
    assert form.secret_bytes(secret) == key
