"""Binder launch URLs on a real hub (base_url /jh/) with the real build service: the hub's
redirect, the refusals (each a page with a 4xx naming the field), XSRF on the confirmation,
and a `gh` launch whose forge (`FancyEnvBinder.github_url`) is a Git server on loopback, and
`launch_at_once` (on here) submitting only when there is nothing to choose.

The spawner is FancySpawnerMixin over JupyterHub's MockSpawner (a real single-user process,
no Docker) and the service uses the fake executor: these tests are about the URL, the
checks and what the start carries; tests/e2e/test_binder_browser.py builds and opens a file
for real.
"""

from __future__ import annotations

import html
import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.support.builder import ROOT
from tests.support.gitserver import GitServer
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for
from tests.support.sharing import Browser

pytestmark = [pytest.mark.slow]
BASE = "/jh/"
SERVICE = f"{BASE}services/fancy-env/"
SCOPE = "custom:fancy-env:build"

PROFILES = [
    {"display_name": "Plain", "slug": "plain", "default": True},
    {"display_name": "From a repository", "slug": "repo",
     "repository_build": {"enabled": True, "allowed_repos": [r"http://127\.0\.0\.1:[0-9]+/.*"]}},
    {"display_name": "Staff builds", "slug": "staff", "allowed_groups": ["staff"],
     "repository_build": {"enabled": True}},
]  # fmt: skip

HUB_CONFIG = """
import fancy_env
from fancy_env.sharing.binder_setup import enable_binder
from fancy_env.sharing.hubsetup import enable_sharing


c.JupyterHub.spawner_class = "tests.support.mockspawner.FancyMockSpawner"
c.FancyMockSpawner.profile_list = {profiles!r}
c.JupyterHub.load_groups = {{
    "builders": {{"users": ["bea", "cai"]}}, "staff": {{"users": ["bea"]}},
}}
c.JupyterHub.load_roles.append(
    {{"name": "builders", "scopes": [{scope!r}], "groups": ["builders"]}}
)
c.JupyterHub.extra_user_scopes = {{"access:services!service=fancy-env"}}
service = fancy_env.setup(c, state_dir={state!r}, port={port}, executor="fake",
                          allow_loopback_repos=True, grant_to_all_users=False)
enable_sharing(c, service, share_servers=False, profile_list={profiles!r},
               options={{"stop_timeout": 30}})
enable_binder(c, service, options={{"github_url": {forge!r}, "gitlab_url": {forge!r},
                                    "launch_at_once": True}})
"""


@dataclass
class Run:
    hub: HubProcess
    git: GitServer
    repo_url: str  # the loopback repository the forge traits point at


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("binder-service")
    git = GitServer(root / "git").start()
    repo = git.create("binder-owner/badge", {"README.md": "# badge\n"})
    # a forge serves `owner/repo` without `.git` too
    os.symlink("badge.git", root / "git" / "srv" / "binder-owner" / "badge")
    config = HUB_CONFIG.format(
        profiles=PROFILES, scope=SCOPE, state=str(root / "hub" / "fancy-env"),
        port=free_port(), forge=git.base_url,
    )  # fmt: skip
    hub = HubProcess(root / "hub", config=textwrap.dedent(config), base_url=BASE,
                     env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        hub.start()
        wait_for(lambda: requests.get(hub.url + "services/fancy-env/health", timeout=2).ok,
                 timeout=30, what="build service behind the hub")  # fmt: skip
        for name in ("bea", "cai", "nora"):
            hub.api("POST", f"/users/{name}")
        yield Run(hub, git, repo.url[: -len(".git")])
    finally:
        hub.stop()
        git.stop()


def servers(run: Run, user: str) -> dict[str, dict]:
    return dict(run.hub.api("GET", f"/users/{user}").json().get("servers") or {})


def test_hub_redirects_base_url_v2_to_the_service_keeping_the_query(run: Run) -> None:
    origin = f"http://127.0.0.1:{run.hub.port}"
    path = "v2/gh/o/r/main?labpath=README.md"
    first = requests.get(origin + BASE + path, allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"] == f"{BASE}hub/{path}"
    second = requests.get(origin + first.headers["Location"], allow_redirects=False, timeout=10)
    assert second.status_code == 302
    assert second.headers["Location"] == f"{SERVICE}{path}"  # the service's own prefix


@pytest.mark.parametrize(
    "rest", ["gh/o/%2e%2e/%2e%2e/%2e%2e/hub/admin", "gh/o/.%2E/x", "%2F%2Fevil.example/x"]
)
def test_hub_redirect_never_leaves_the_service_prefix(run: Run, rest: str) -> None:
    """Through the proxy (which resolves encoded dot segments itself) and straight to the
    hub's own port (where the handler sees them): never a redirect out of the prefix."""
    for port in (run.hub.port, run.hub.hub_port):
        url = f"http://127.0.0.1:{port}{BASE}hub/v2/{rest}"
        r = requests.get(url, allow_redirects=False, timeout=10)
        if r.is_redirect:  # only into the service's prefix, with no dot segment left
            location = r.headers["Location"]
            assert location.startswith(f"{SERVICE}v2/"), (port, location)
            assert not re.search(r"/(\.|%2e)+(/|$)", location, re.IGNORECASE), location
        else:
            assert 400 <= r.status_code < 500, (port, r.status_code)
    direct = requests.get(f"http://127.0.0.1:{run.hub.hub_port}{BASE}hub/v2/{rest}",
                          allow_redirects=False, timeout=10)  # fmt: skip
    if not direct.is_redirect:
        assert direct.status_code == 400 and direct.text.startswith("spec: "), direct.text


def git_spec(url: str, ref: str = "main") -> str:
    return f"git/{quote(url, safe='')}/{ref}"


#: (user, path after v2/, status, the start of the message)
REFUSALS = [
    ("bea", "bb/o/r/main", 404, "provider: 'bb' is not a provider here"),
    ("bea", "gh/binder-owner/badge", 400, 'spec: the form is gh/<owner>/<repo>/<ref>'),
    ("bea", "gh/binder-owner/badge/a..b", 400, "ref: must be a branch, tag or commit"),
    ("bea", "gl/badge/main", 400, "spec: the form is gl/<url-encoded project path>/<ref>"),
    ("bea", git_spec("http://10.0.0.5/r.git"), 400, "repo: http is not allowed for this host"),
    ("bea", git_spec("https://10.0.0.5/r.git"), 400, "repo: host 10.0.0.5 is a private address"),
    ("bea", git_spec("file:///etc"), 400, "repo: file: URLs are not allowed"),
    ("cai", git_spec("https://example.org/r.git"), 403, "profile: none of the profiles"),
    ("nora", "gh/binder-owner/badge/main", 403, f"permission: building from a repository "
     f"needs the scope {SCOPE}"),
    ("bea", "gh/binder-owner/badge/main?labpath=../../hub/admin", 400,
     "labpath: must not contain '.' or '..' segments"),
    ("bea", "gh/binder-owner/badge/main?urlpath=/etc/passwd", 400,
     "urlpath: must be relative to the server's root"),
]  # fmt: skip


@pytest.mark.parametrize(("user", "rest", "status", "message"), REFUSALS)
def test_refusals_are_pages_naming_the_field(
    run: Run, user: str, rest: str, status: int, message: str
) -> None:
    browser = Browser(run.hub, user)
    r = browser.get(f"{BASE}v2/{rest}")  # through the hub's redirect and the service's login
    assert r.status_code == status, (r.status_code, r.text[-400:])
    assert r.url.startswith(f"http://127.0.0.1:{run.hub.port}{SERVICE}v2/")
    error = re.search(r'role="alert" data-status="(\d+)">([^<]*)<', r.text)
    assert error, r.text[-600:]
    assert html.unescape(error.group(2)).startswith(message), error.group(2)
    assert not servers(run, user)


def test_gh_and_gl_name_the_loopback_forge(run: Run) -> None:
    browser = Browser(run.hub, "cai")
    for rest in ("gh/binder-owner/badge.git/main", "gl/binder-owner%2Fbadge/main"):
        r = browser.get(f"{BASE}v2/{rest}?labpath=README.md")
        assert r.status_code == 200, r.text[-400:]
        assert f"<code>{run.repo_url}</code>" in r.text
        assert "<code>lab/tree/README.md</code>" in r.text
        assert 'name="profile" value="repo"' in r.text  # cai's one repository profile
        # launch_at_once: nothing to choose, no server running: the page submits itself
        assert '<p role="status">Launching…</p>' in r.text


def test_gh_launch_confirms_with_xsrf_then_starts_with_the_urlpath(run: Run) -> None:
    bea = Browser(run.hub, "bea")
    page_path = f"{SERVICE}v2/gh/binder-owner/badge/main?labpath=README.md"
    page = bea.get(f"{BASE}v2/gh/binder-owner/badge/main?labpath=README.md")
    assert page.status_code == 200 and page.url.endswith(page_path), page.text[-400:]
    for slug in ("repo", "staff"):  # bea may use both repository profiles: a choice
        assert f'type="radio" name="profile" id="profile-{slug}" value="{slug}"' in page.text
    assert "Launching…" not in page.text  # a choice to make: launch_at_once waits for it
    # the confirmation without its _xsrf (a cross-site form): refused, nothing starts
    forged = bea.session.post(bea._abs(page_path), data={"action": "launch", "profile": "repo"},
                              timeout=30)  # fmt: skip
    assert forged.status_code == 403, forged.text[-300:]
    assert not servers(run, "bea")
    bad = bea.post_form(page_path, {"action": "launch", "profile": "plain"}, page=page.text)
    assert bad.status_code == 400 and "profile: choose one of repo, staff" in bad.text
    building = bea.post_form(page_path, {"action": "launch", "profile": "repo"}, page=page.text)
    assert building.status_code == 200, building.text[-400:]
    if "spawn-pending" not in building.url:  # the building page: post back once built
        build_id = re.search(r'name="build_id" value="([0-9a-f]+)"', building.text)
        assert build_id and 'name="profile" value="repo"' in building.text
        wait_for(lambda: bea.api("GET", f"{SERVICE}api/builds/{build_id.group(1)}")
                 .json()["status"] == "built", timeout=60, what="the fake build")  # fmt: skip
        launched = bea.post_form(page_path, {"action": "launch", "profile": "repo",
                                             "build_id": build_id.group(1)})  # fmt: skip
        assert "spawn-pending" in launched.url or "/user/bea/" in launched.url, launched.url
    wait_for(lambda: servers(run, "bea").get("", {}).get("ready"), timeout=60,
             what="bea's server")  # fmt: skip
    options = servers(run, "bea")[""]["user_options"]
    assert options["profile"] == "repo" and options["urlpath"] == "lab/tree/README.md"
    build = bea.api("GET", f"{SERVICE}api/builds/{options['build_id']}").json()
    assert build["repo"] == run.repo_url and build["ref"] == "main"
    # a second visit offers the running server's choices instead of starting another
    again = bea.get(page_path)
    assert 'data-action="open"' in again.text and 'value="replace"' in again.text
    assert "Launching…" not in again.text  # never replaces a running server unasked
    run.hub.stop_server("bea")


OFF_CONFIG = """
import fancy_env
from fancy_env.sharing.hubsetup import enable_sharing
c.JupyterHub.spawner_class = "jupyterhub.tests.mocking.MockSpawner"
service = fancy_env.setup(c, state_dir={state!r}, port={port}, executor="fake",
                          allow_loopback_repos=True)
enable_sharing(c, service, share_servers=False)
"""


def test_off_by_default(tmp_path: Path) -> None:
    """Without `enable_binder`: the hub has no `v2/` handler and the service's page says the
    links are off (404), even for a logged-in user allowed to build."""
    config = OFF_CONFIG.format(state=str(tmp_path / "hub" / "fancy-env"), port=free_port())
    hub = HubProcess(tmp_path / "hub", config=textwrap.dedent(config), base_url=BASE,
                     env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        hub.start()
        wait_for(lambda: requests.get(hub.url + "services/fancy-env/health", timeout=2).ok,
                 timeout=30, what="build service behind the hub")  # fmt: skip
        hub.api("POST", "/users/bea")
        browser = Browser(hub, "bea")
        direct = browser.get(f"{BASE}hub/v2/gh/o/r/main", allow_redirects=False)
        assert direct.status_code == 404
        page = browser.get(f"{SERVICE}v2/gh/o/r/main?labpath=README.md")
        assert page.status_code == 404 and "Binder links are off" in page.text
    finally:
        hub.stop()
