"""Binder launch URLs (fancy_env.binder, pure) and enable_binder's hub config: parameter tables.

The spec rules follow BinderHub's repoproviders (GitHub: split on the first two '/', the ref
may hold '/'; GitLab and Git: split on the first '/', both parts percent-decoded; a ref is
required) and its base handler, which reads the spec from the raw path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from traitlets.config import Config

from fancy_env.binder import (
    BinderError,
    hub_redirect_target,
    parse_binder,
    query_values,
    split_v2_path,
)
from fancy_env.sharing.binder_setup import BinderRedirectHandler, enable_binder

GH = "http://127.0.0.1:9/forge"
GL = "https://gitlab.example.org"

#: (provider, raw spec, query) -> (repo, ref, urlpath)
GOOD = [
    ("gh", "owner/repo/main", {}, ("https://github.com/owner/repo", "main", "")),
    ("gh", "owner/repo.git/main", {}, ("https://github.com/owner/repo", "main", "")),
    ("gh", "owner/repo/HEAD", {}, ("https://github.com/owner/repo", "", "")),
    ("gh", "owner/repo/feature/x", {}, ("https://github.com/owner/repo", "feature/x", "")),
    ("gh", "owner/repo/feature%2Fx", {}, ("https://github.com/owner/repo", "feature/x", "")),
    ("gh", "o/r/v1.0", {"labpath": "README.md"},
     ("https://github.com/o/r", "v1.0", "lab/tree/README.md")),
    ("gh", "o/r/main", {"urlpath": "lab/tree/a b.ipynb"},
     ("https://github.com/o/r", "main", "lab/tree/a%20b.ipynb")),
    ("gh", "o/r/" + "a" * 40, {}, ("https://github.com/o/r", "a" * 40, "")),
    ("gl", "group%2Fproject/main", {}, ("https://gitlab.com/group/project", "main", "")),
    ("gl", "group%2Fsub%2Fproject.git/v2", {}, ("https://gitlab.com/group/sub/project", "v2", "")),
    ("gl", "group%2Fproject/release%2F1", {},
     ("https://gitlab.com/group/project", "release/1", "")),
    ("git", "https%3A%2F%2Fexample.org%2Fa%2Fb.git/main", {},
     ("https://example.org/a/b.git", "main", "")),
    ("git", "http%3A%2F%2F127.0.0.1%3A8000%2Fr.git/HEAD", {"labpath": "docs/intro.ipynb"},
     ("http://127.0.0.1:8000/r.git", "", "lab/tree/docs/intro.ipynb")),
    ("git", "https%3A%2F%2Fexample.org%2Fr/dev", {"urlpath": "voila/render/x.ipynb", "other": "1"},
     ("https://example.org/r", "dev", "voila/render/x.ipynb")),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "spec", "query", "expect"), GOOD)
def test_parses_like_binderhub(
    provider: str, spec: str, query: dict[str, str], expect: tuple[str, str, str]
) -> None:
    req = parse_binder(provider, spec, query)
    assert (req.repo, req.ref, req.urlpath) == expect
    assert req.provider == provider


def test_forge_hosts_are_traits() -> None:
    assert parse_binder("gh", "o/r/main", github_url=GH + "/").repo == f"{GH}/o/r"
    assert parse_binder("gl", "g%2Fp/main", gitlab_url=GL).repo == f"{GL}/g/p"


#: (provider, raw spec, query) -> (field, words in the message, status)
BAD = [
    ("bb", "o/r/main", {}, ("provider", "allowed: gh, gl, git", 404)),
    ("zenodo", "10.5281/x", {}, ("provider", "'zenodo' is not a provider", 404)),
    ("gh", "", {}, ("spec", "missing", 400)),
    ("gh", "owner/repo", {}, ("spec", 'did you mean "owner/repo/HEAD"?', 400)),
    ("gh", "owner", {}, ("spec", "gh/<owner>/<repo>/<ref>", 400)),
    ("gh", "owner/repo/", {}, ("ref", "is required", 400)),
    ("gh", "own er/repo/main", {}, ("spec", "letters, digits", 400)),
    ("gh", "../repo/main", {}, ("spec", "letters, digits", 400)),
    ("gh", "o%2F..%2Fx/repo/main", {}, ("spec", "letters, digits", 400)),
    ("gh", "o/r/a..b", {}, ("ref", "must be a branch, tag or commit", 400)),
    ("gh", "o/r/%0Amain", {}, ("ref", "control characters", 400)),
    ("gh", "o/r/%ff", {}, ("ref", "not UTF-8", 400)),
    ("gh", "o/r/-upload-pack", {}, ("ref", "must not start with '-'", 400)),
    ("gl", "project/main", {}, ("spec", "at least group/project", 400)),
    ("gl", "group%2F..%2Fproject/main", {}, ("spec", "at least group/project", 400)),
    ("gl", "group%2Fproject", {}, ("spec", "gl/<url-encoded project path>/<ref>", 400)),
    ("gl", "group%2Fproject/", {}, ("ref", "is required", 400)),
    ("git", "https%3A%2F%2Fexample.org%2Fr", {},
     ("spec", "git/<url-encoded repository URL>/<ref>", 400)),
    ("git", "/main", {}, ("spec", "git/<url-encoded repository URL>/<ref>", 400)),
    ("git", "https%3A%2F%2Fexample.org%2Fr/", {}, ("ref", "is required", 400)),
    ("git", "https%3A%2F%2Fex%20ample.org/main", {}, ("repo", "spaces or control", 400)),
    ("gh", "o/r/main", {"labpath": "../../hub/admin"}, ("labpath", "'..' segments", 400)),
    ("gh", "o/r/main", {"labpath": "/etc/passwd"}, ("labpath", "without a leading '/'", 400)),
    ("gh", "o/r/main", {"urlpath": "%2e%2e/x"}, ("urlpath", "'..' segments", 400)),
    ("gh", "o/r/main", {"urlpath": "https://evil.example/x"}, ("urlpath", "scheme", 400)),
    ("gh", "o/r/main", {"urlpath": "lab", "labpath": "x"}, ("labpath", "not both", 400)),
    ("gh", "o/r/" + "x" * 3000, {}, ("spec", "at most 2048", 400)),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "spec", "query", "expect"), BAD)
def test_refusals_name_the_field(
    provider: str, spec: str, query: dict[str, str], expect: tuple[str, str, int]
) -> None:
    field, words, status = expect
    with pytest.raises(BinderError) as info:
        parse_binder(provider, spec, query)
    assert info.value.field == field
    assert words in info.value.message
    assert info.value.status == status


@pytest.mark.parametrize(
    ("path", "prefix", "expect"),
    [
        ("/services/fe/v2/gh/o/r/main", "/services/fe/", ("gh", "o/r/main")),
        ("/jh/services/fe/v2/git/https%3A%2F%2Fh%2Fr/main", "/jh/services/fe/",
         ("git", "https%3A%2F%2Fh%2Fr/main")),
        ("/services/fe/v2/gh", "/services/fe/", ("gh", "")),
    ],
)  # fmt: skip
def test_split_v2_path_keeps_escapes(path: str, prefix: str, expect: tuple[str, str]) -> None:
    assert split_v2_path(path, prefix) == expect


def test_split_v2_path_elsewhere() -> None:
    with pytest.raises(BinderError):
        split_v2_path("/services/other/v2/gh/o/r/main", "/services/fe/")


def test_query_values_takes_the_last() -> None:
    assert query_values({"labpath": [b"a", b"b"], "x": []}) == {"labpath": "b"}


#: (rest, query) -> the target under /jh/services/fe/, or the refused field
REDIRECTS = [
    ("gh/o/r/main", "", "/jh/services/fe/v2/gh/o/r/main"),
    ("gh/o/r/main", "labpath=README.md", "/jh/services/fe/v2/gh/o/r/main?labpath=README.md"),
    ("git/https%3A%2F%2Fh%2Fr.git/main", "urlpath=lab%2Ftree%2Fx",
     "/jh/services/fe/v2/git/https%3A%2F%2Fh%2Fr.git/main?urlpath=lab%2Ftree%2Fx"),
    ("gh/o/../../../hub/admin", "", BinderError("spec", "")),
    ("gh/o/%2e%2E/x", "", BinderError("spec", "")),
    ("gh/o/.%2e/x", "", BinderError("spec", "")),
    ("/evil.example/x", "", BinderError("spec", "")),
    ("", "", BinderError("spec", "")),
    ("gh\\o/r/main", "", BinderError("spec", "")),
    ("gh/o/r/main\r\nSet-Cookie:x", "", BinderError("spec", "")),
    ("gh/o/r/main", "a=b\r\nLocation: //evil", BinderError("query", "")),
]  # fmt: skip


@pytest.mark.parametrize(("rest", "query", "expect"), REDIRECTS)
def test_hub_redirect_stays_in_the_service_prefix(
    rest: str, query: str, expect: str | BinderError
) -> None:
    if isinstance(expect, str):
        assert hub_redirect_target("/jh/services/fe/", rest, query) == expect
        return
    with pytest.raises(BinderError) as info:
        hub_redirect_target("/jh/services/fe/", rest, query)
    assert info.value.field == expect.field


def _service() -> dict[str, Any]:
    return {"name": "fancy-env", "environment": {"FANCY_ENV_BUILDER_CONFIG": "{}"}}


@pytest.mark.parametrize(
    ("base_url", "hub_prefix", "service_prefix"),
    [("/", "/hub/", "/services/fancy-env/"), ("/jh", "/jh/hub/", "/jh/services/fancy-env/")],
)
def test_enable_binder_adds_the_hub_redirect(
    base_url: str, hub_prefix: str, service_prefix: str
) -> None:
    c = Config()
    c.JupyterHub.base_url = base_url
    c.JupyterHub.extra_handlers = [(r"/other", object, {})]
    svc = _service()
    enable_binder(c, svc, options={"launch_at_once": True})
    enable_binder(c, svc)  # twice: one handler
    handlers = c.JupyterHub.extra_handlers
    assert handlers[0][0] == r"/other" and len(handlers) == 2
    assert handlers[1] == (
        r"/v2/(.*)", BinderRedirectHandler,
        {"hub_prefix": hub_prefix, "service_prefix": service_prefix},
    )  # fmt: skip
    config = json.loads(svc["environment"]["FANCY_ENV_BUILDER_CONFIG"])
    assert config["FancyEnvBinder"] == {"enabled": True, "launch_at_once": True}


def test_binder_is_off_by_default() -> None:
    from fancy_env.sharing.binder_pages import FancyEnvBinder

    binder = FancyEnvBinder()
    assert (binder.enabled, binder.launch_at_once) == (False, False)
    assert (binder.github_url, binder.gitlab_url) == ("https://github.com", "https://gitlab.com")
