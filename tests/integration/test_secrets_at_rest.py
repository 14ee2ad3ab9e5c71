"""Secrets at rest and build rights, on a real hub with the real build service (issue 9).

One hub for the module: `fancy_env.setup(c, grant_to_all_users=False)` + `enable_sharing`,
a role `builders` (group `builders`: bea) holding `custom:fancy-env:build`, every user may open
the service (links). The spawner is FancySpawnerMixin over JupyterHub's MockSpawner (a real
single-user process, no Docker) and the service uses the fake executor: these tests are about
who may build and what is written down, not about images.

The last test stops the hub and greps every file of the run (jupyterhub.sqlite, the build DB
and its WAL/SHM, the hub log which holds the service's log) for the link code, the ticket
secret, a ticket and the API tokens, and checks the modes of the service's files.
"""

from __future__ import annotations

import json
import re
import stat
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from fancy_env.tickets import HEADER
from tests.support.builder import ROOT
from tests.support.gitserver import GitServer
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for
from tests.support.sharing import Browser

pytestmark = [pytest.mark.slow]
PREFIX = "services/fancy-env/"
SCOPE = "custom:fancy-env:build"

PROFILES = [
    {"display_name": "Plain", "slug": "plain", "default": True},
    {"display_name": "From a repository", "slug": "repo", "repository_build": {"enabled": True}},
]

HUB_CONFIG = """
import fancy_env
from fancy_env.sharing.hubsetup import enable_sharing


c.JupyterHub.spawner_class = "tests.support.mockspawner.FancyMockSpawner"
c.FancyMockSpawner.profile_list = {profiles!r}
c.JupyterHub.load_groups = {{"builders": {{"users": ["bea"]}}}}
c.JupyterHub.load_roles.append(
    {{"name": "builders", "scopes": [{scope!r}], "groups": ["builders"]}}
)
c.JupyterHub.extra_user_scopes = {{"access:services!service=fancy-env", "shares!user"}}
service = fancy_env.setup(c, state_dir={state!r}, port={port}, executor="fake",
                          allow_loopback_repos=True, grant_to_all_users=False)
enable_sharing(c, service, options={{"stop_timeout": 30}})
# the test must know the service token to look for it; kept outside the hub's files
open({token_file!r}, "w").write(service["api_token"])
"""


@dataclass
class Run:
    hub: HubProcess
    git: GitServer
    state: Path  # the build service's state dir
    token_file: Path
    secrets: dict[str, str] = field(default_factory=dict)  # what must be nowhere at rest

    def service(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, self.hub.url + PREFIX + path, timeout=60, **kw)

    def token(self, user: str) -> str:
        token = self.hub.user_token(user)
        self.secrets[f"{user}'s API token"] = token
        return token


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("secrets-at-rest")
    state, token_file = root / "hub" / "fancy-env", root / "service-token"
    config = HUB_CONFIG.format(
        profiles=PROFILES, scope=SCOPE, state=str(state), port=free_port(),
        token_file=str(token_file),
    )  # fmt: skip
    hub = HubProcess(root / "hub", config=textwrap.dedent(config), env={"PYTHONPATH": str(ROOT)})
    git = GitServer(root / "git").start()
    try:
        hub.start()
        wait_for(lambda: requests.get(hub.url + PREFIX + "health", timeout=2).ok, timeout=30,
                 what="build service behind the hub")  # fmt: skip
        for name in ("bea", "nora"):
            hub.api("POST", f"/users/{name}")
        r = Run(hub, git, state, token_file)
        r.secrets["service API token"] = token_file.read_text().strip()
        r.secrets["test-admin token"] = hub.admin_token
        r.secrets["ticket secret"] = json.loads((state / "service.json").read_text())[
            "ticket_secret"
        ]
        yield r
    finally:
        hub.stop()
        git.stop()


def form_config(browser: Browser, user: str) -> dict[str, Any]:
    page = browser.get(f"/hub/spawn/{user}")
    assert page.status_code == 200, page.text[-300:]
    m = re.search(
        r'<script type="application/json" id="fancy-env-config">(.*?)</script>', page.text
    )
    assert m, "no form config on the spawn page"
    return dict(json.loads(m.group(1)))


def test_builder_role_can_build_and_share(run: Run) -> None:
    bea = Browser(run.hub, "bea")
    cfg = form_config(bea, "bea")
    assert cfg["ticket"], "bea holds the build scope through the builders role"
    assert [p["repositoryBuild"]["enabled"] for p in cfg["profiles"]] == [False, True]
    run.secrets["bea's ticket"] = cfg["ticket"]
    repo = run.git.create("course", {"README.md": "hello\n"})
    built = run.service("POST", "api/builds", json={"repo": repo.url},
                        headers={HEADER: cfg["ticket"]})  # fmt: skip
    assert built.status_code in (200, 202), built.text
    build_id = built.json()["id"]
    wait_for(lambda: run.service("GET", f"api/builds/{build_id}", headers={HEADER: cfg["ticket"]})
             .json()["status"] == "built", timeout=60, what="the fake build")  # fmt: skip
    # while the service runs, its SQLite WAL and shared-memory files are private too
    db = run.state / "fancy-env-builds.sqlite"
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o600, suffix
    token = run.token("bea")
    link = run.service("POST", "api/links", json={"profile": "repo", "build_id": build_id},
                       headers={"Authorization": f"token {token}"})  # fmt: skip
    assert link.status_code == 201, link.text
    code = link.json()["code"]
    run.secrets["link code"] = code
    # visited and launched by a browser without Sec-Fetch-* headers (the hub's XSRF warning)
    page = bea.get(link.json()["url"])
    assert page.status_code == 200, page.text[-300:]
    launched = bea.post_form(link.json()["url"] + "/launch", {"action": "launch"})
    assert launched.status_code == 200, launched.text[-400:]
    wait_for(lambda: run.hub.api("GET", "/users/bea").json()["servers"].get("", {}).get("ready"),
             timeout=60, what="bea's server from the link")  # fmt: skip
    options = run.hub.api("GET", "/users/bea").json()["servers"][""]["user_options"]
    assert options["profile"] == "repo" and options["build_id"]  # the launch's own record
    run.secrets["bea's build id"] = build_id  # not a secret; used by the next test
    run.hub.stop_server("bea")


def test_no_scope_user_cannot_build(run: Run) -> None:
    """nora may use the service (links) but holds no build scope: no ticket, no repository
    panel, a crafted form POST refused, REST 403, link launch refused with a clear page."""
    nora = Browser(run.hub, "nora")
    cfg = form_config(nora, "nora")
    assert cfg["ticket"] == ""
    assert not any(p["repositoryBuild"]["enabled"] for p in cfg["profiles"])
    build_id = run.secrets["bea's build id"]
    xsrf = nora.session.cookies.get("_xsrf", path="/hub/") or ""
    crafted = nora.session.post(
        run.hub.url + "hub/spawn/nora",
        data={"profile": "repo", "build_id": build_id, "_xsrf": xsrf},
        timeout=60,
    )
    assert crafted.status_code >= 400, crafted.text[-400:]
    assert SCOPE in crafted.text
    assert not run.hub.api("GET", "/users/nora").json()["servers"]

    token = run.token("nora")
    repo = run.git.create("nora-repo", {"README.md": "x\n"})
    rest = run.service("POST", "api/builds", json={"repo": repo.url},
                       headers={"Authorization": f"token {token}"})  # fmt: skip
    assert rest.status_code == 403, rest.text
    assert SCOPE in rest.json()["message"]

    bea_token = run.token("bea")
    link = run.service("POST", "api/links", json={"profile": "repo", "build_id": build_id},
                       headers={"Authorization": f"token {bea_token}"}).json()  # fmt: skip
    run.secrets["second link code"] = link["code"]
    page = nora.get(link["url"])
    assert page.status_code == 403 and SCOPE in page.text, page.text[-400:]
    # a crafted launch, with a good _xsrf (from a link nora may open)
    plain = run.service("POST", "api/links", json={"profile": "plain"},
                        headers={"Authorization": f"token {bea_token}"}).json()  # fmt: skip
    run.secrets["third link code"] = plain["code"]
    with_xsrf = nora.get(plain["url"])
    assert with_xsrf.status_code == 200, with_xsrf.text[-300:]
    launch = nora.post_form(link["url"] + "/launch", {"action": "launch"}, page=with_xsrf.text)
    assert launch.status_code == 403 and SCOPE in launch.text
    assert not run.hub.api("GET", "/users/nora").json()["servers"]


def _files(top: Path) -> list[Path]:
    return sorted(p for p in top.rglob("*") if p.is_file())


def test_nothing_secret_at_rest_and_private_modes(run: Run) -> None:
    run.hub.stop()  # flush the hub's database and logs
    hub_state = run.hub.state
    # the admin's own config file (it holds the test-admin token) and the two secret files
    kept = ("jupyterhub_config.py", "service.json", "ticket_secret")
    scanned = [p for p in _files(hub_state) if p.name not in kept]
    names = {p.name for p in scanned}
    assert {"jupyterhub.sqlite", "jupyterhub.log", "fancy-env-builds.sqlite"} <= names, names
    found = []
    for path in scanned:
        data = path.read_bytes()
        for what, secret in run.secrets.items():
            if what.endswith("build id"):
                continue
            if secret.encode() in data:
                found.append(f"{what} in {path.relative_to(hub_state)}")
    assert found == []
    log = (hub_state / "jupyterhub.log").read_text(errors="replace")
    assert "/l/[code]" in log  # the request log still says a link was opened
    assert not re.search(r"Skipping XSRF check for insecure request \S+ \S*/l/", log)
    # what JupyterHub keeps of the service: paths, no secret
    import sqlite3

    con = sqlite3.connect(hub_state / "jupyterhub.sqlite")
    (env,) = con.execute("SELECT environment FROM services WHERE name='fancy-env'").fetchone()
    assert set(json.loads(env)) == {"FANCY_ENV_SERVICE_FILE", "PYTHONPATH"}
    con.close()
    # the service's files are its owner's only
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [run.state, *_files(run.state)]}
    assert modes.pop(run.state.name) == 0o700
    assert modes == {name: 0o600 for name in modes}, modes
    assert {"service.json", "ticket_secret", "fancy-env-builds.sqlite"} <= set(modes)


def test_grant_to_all_users_mints_for_everyone(tmp_path: Path) -> None:
    """The default (`grant_to_all_users=True`, the scope in the `user` role through
    extra_user_scopes): every user's form gets a ticket that builds."""
    config = HUB_CONFIG.format(
        profiles=PROFILES, scope=SCOPE, state=str(tmp_path / "fe"), port=free_port(),
        token_file=str(tmp_path / "token"),
    ).replace("grant_to_all_users=False", "grant_to_all_users=True")  # fmt: skip
    hub = HubProcess(tmp_path / "hub", config=textwrap.dedent(config),
                     env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        hub.start()
        wait_for(lambda: requests.get(hub.url + PREFIX + "health", timeout=2).ok, timeout=30,
                 what="build service behind the hub")  # fmt: skip
        hub.api("POST", "/users/nora")
        cfg = form_config(Browser(hub, "nora"), "nora")
        assert cfg["ticket"] and cfg["profiles"][1]["repositoryBuild"]["enabled"]
        r = requests.get(hub.url + PREFIX + "api/builds", headers={HEADER: cfg["ticket"]},
                         timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
    finally:
        hub.stop()
