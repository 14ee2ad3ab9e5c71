"""Private repositories end to end (issue 12, item 1): a real hub, the real build service with
the Docker executor (real repo2docker, engine and registry), a loopback Git server that
requires HTTP auth, two users.

alice stores a token (a unique canary) through the credentials page (a real form POST with
the page's _xsrf) and builds her private repository. Then the canary is looked for in the
hub's log (which holds the service's), the build log, every row of the build database and
every layer of the image (`docker save`), and the link alice made. bob, without a
credential, is refused through the form's API, a link and the hub API, each with the
reason; with his own token (stored through the API) he launches through the link.

The spawner is FancySpawnerMixin over JupyterHub's MockSpawner (a real single-user process,
not a container): what matters here is which starts the hub lets through, and the image is
built, pushed and inspected for real.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from fancy_env.tickets import HEADER
from tests.support import db
from tests.support.builder import ROOT, parse_sse
from tests.support.gitserver import GitServer, dockerfile_repo_files
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for
from tests.support.registry import REGISTRY
from tests.support.sharing import Browser

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SERVICE = "services/fancy-env/"
PREFIX = f"{REGISTRY}/fancy-env-test/"
ALICE_TOKEN = "alicecanary-0e5b27c1f4a84d6b9d3c"
BOB_TOKEN = "bobtoken-91c2d8e7a6b54f3e"

HUB_CONFIG = """
import fancy_env
from fancy_env.sharing.hubsetup import enable_sharing


c.JupyterHub.spawner_class = "tests.support.mockspawner.FancyMockSpawner"
c.FancyMockSpawner.profile_list = [{{"display_name": "From a repository", "slug": "repo",
    "default": True, "repository_build": {{"enabled": True}}}}]
c.JupyterHub.extra_user_scopes = {{"access:services!service=fancy-env", "shares!user"}}
service = fancy_env.setup(c, state_dir={state!r}, port={port}, executor="docker",
                          image_prefix={prefix!r}, allow_loopback_repos=True)
enable_sharing(c, service, options={{"stop_timeout": 30}})
"""


@dataclass
class Run:
    hub: HubProcess
    forge: GitServer
    state: Path

    def service(self, method: str, path: str, user: str, **kw: object) -> requests.Response:
        headers = {"Authorization": f"token {self.hub.user_token(user)}"}
        return requests.request(method, self.hub.url + SERVICE + path, headers=headers,
                                timeout=120, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("private-repos")
    state = root / "hub" / "fancy-env"
    config = HUB_CONFIG.format(state=str(state), port=free_port(), prefix=PREFIX)
    hub = HubProcess(root / "hub", config=textwrap.dedent(config), env={"PYTHONPATH": str(ROOT)})
    forge = GitServer(root / "forge", tokens=(ALICE_TOKEN, BOB_TOKEN)).start()
    try:
        hub.start()
        wait_for(lambda: requests.get(hub.url + SERVICE + "health", timeout=2).ok, timeout=60,
                 what="build service behind the hub")  # fmt: skip
        for name in ("alice", "bob"):
            hub.api("POST", f"/users/{name}")
        yield Run(hub, forge, state)
    finally:
        hub.stop()
        forge.stop()


def events(run: Run, user: str, build_id: str) -> list[dict[str, object]]:
    headers = {"Authorization": f"token {run.hub.user_token(user)}"}
    with requests.get(run.hub.url + SERVICE + f"api/builds/{build_id}/events", headers=headers,
                      stream=True, timeout=600) as r:  # fmt: skip
        r.raise_for_status()
        return [m["data"] for m in parse_sse(r.iter_lines(decode_unicode=True)) if "data" in m]


def ticket_of(browser: Browser, user: str) -> str:
    page = browser.get(f"/hub/spawn/{user}")
    m = re.search(r'<script type="application/json" id="fancy-env-config">(.*?)</script>',
                  page.text)  # fmt: skip
    assert m, page.text[-300:]
    return str(json.loads(m.group(1))["ticket"])


def layers_contain(image: str, needle: bytes) -> list[str]:
    """Every file in every layer of `docker save IMAGE` that contains `needle`."""
    saved = subprocess.run(["docker", "save", image], capture_output=True, timeout=300,
                           check=True).stdout  # fmt: skip
    found = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        assert needle not in saved, "the saved image holds the token"
        for member in outer.getmembers():
            data = outer.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if not data or not tarfile.is_tarfile(io.BytesIO(data)):
                continue
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                for f in layer.getmembers():
                    body = layer.extractfile(f).read() if f.isfile() else b""  # type: ignore[union-attr]
                    if needle in body:
                        found.append(f"{member.name}:{f.name}")
    return found


def test_private_repository_end_to_end(run: Run, docker_engine: str) -> None:
    repo = run.forge.create("course-private", dockerfile_repo_files(docker_engine, "private"))
    alice = Browser(run.hub, "alice")
    ticket = ticket_of(alice, "alice")

    # without a credential: a clear 4xx that says where to add one
    r = requests.post(run.hub.url + SERVICE + "api/builds", json={"repo": repo.url},
                      headers={HEADER: ticket}, timeout=60)  # fmt: skip
    assert r.status_code == 403, r.text
    assert f"needs a credential for {run.forge.base_url}" in r.json()["message"]
    assert f"/{SERVICE}credentials" in r.json()["message"]

    # alice stores her token through the page (a form POST with the page's _xsrf)
    page = alice.get(f"/{SERVICE}credentials")
    assert page.status_code == 200 and "Git credentials" in page.text
    bad = alice.post_form(f"/{SERVICE}credentials",
                          {"action": "save", "host": "ftp://x", "token": ALICE_TOKEN})  # fmt: skip
    assert bad.status_code == 400 and "host:" in bad.text and ALICE_TOKEN not in bad.text
    fields = {"action": "save", "host": run.forge.base_url, "token": ALICE_TOKEN}
    stored = alice.post_form(f"/{SERVICE}credentials", fields, page=page.text)
    assert stored.status_code == 200, stored.text[-500:]
    assert "Stored the credential for" in stored.text and ALICE_TOKEN not in stored.text
    listing = alice.api("GET", f"/{SERVICE}api/credentials").json()["credentials"]
    assert [c["origin"] for c in listing] == [run.forge.base_url]
    assert ALICE_TOKEN not in json.dumps(listing)

    r = requests.post(run.hub.url + SERVICE + "api/builds", json={"repo": repo.url},
                      headers={HEADER: ticket}, timeout=60)  # fmt: skip
    assert r.status_code == 202, r.text
    build = r.json()
    assert build["private"] is True
    log = events(run, "alice", build["id"])
    assert log[-1]["phase"] == "built", log[-5:]
    image = str(build["image"])

    link = run.service("POST", "api/links", "alice", json={"profile": "repo",
                       "build_id": build["id"]})  # fmt: skip
    assert link.status_code == 201, link.text
    link_url = link.json()["url"]
    assert ALICE_TOKEN not in json.dumps(link.json()) and ALICE_TOKEN not in image

    check_bob_refused(run, repo.url, build, link_url)
    check_bob_with_his_token(run, repo.url, link_url)

    # the canary is nowhere: logs, build log, database rows, image layers
    assert ALICE_TOKEN not in json.dumps(log)
    assert ALICE_TOKEN not in run.hub.log_path.read_text(errors="replace")
    assert BOB_TOKEN not in run.hub.log_path.read_text(errors="replace")
    dump = db.dump(f"sqlite:///{run.state / 'fancy-env-builds.sqlite'}")
    assert "forge_credentials" not in dump and dump  # rows, not names
    assert ALICE_TOKEN not in dump and BOB_TOKEN not in dump
    for path in run.state.rglob("*"):
        if path.is_file():
            assert ALICE_TOKEN.encode() not in path.read_bytes(), path
    assert layers_contain(image, ALICE_TOKEN.encode()) == []
    assert run.forge.requests(), "the forge was asked"


def check_bob_refused(run: Run, repo_url: str, build: dict[str, object], link_url: str) -> None:
    bob = Browser(run.hub, "bob")
    # the form's path: the build API with bob's ticket, by branch and by full commit
    ticket = ticket_of(bob, "bob")
    for ref in ("", str(build["commit"])):
        r = requests.post(run.hub.url + SERVICE + "api/builds", json={"repo": repo_url, "ref": ref},
                          headers={HEADER: ticket}, timeout=60)  # fmt: skip
        assert r.status_code == 403, (ref, r.text)
        assert "needs a credential for" in r.json()["message"]
    # a crafted form POST with alice's build id
    xsrf = bob.session.cookies.get("_xsrf", path="/hub/") or ""
    crafted = bob.session.post(run.hub.url + "hub/spawn/bob",
                               data={"profile": "repo", "build_id": build["id"], "_xsrf": xsrf},
                               timeout=60)  # fmt: skip
    assert crafted.status_code >= 400, crafted.text[-300:]
    # the REST API (the hub's)
    r = run.hub.api("POST", "/users/bob/server", json={"profile": "repo",
                    "build_id": build["id"]})  # fmt: skip
    assert r.status_code in (400, 403), r.text
    # the link: the page opens, the launch is refused with the reason on the page
    page = bob.get(link_url)
    assert page.status_code == 200, page.text[-300:]
    assert 'id="private-notice"' in page.text and "store your own access token" in page.text
    launched = bob.post_form(link_url + "/launch", {"action": "launch"})
    assert launched.status_code == 403, launched.text[-500:]
    assert "needs a credential for" in launched.text and "credentials" in launched.text
    assert not run.hub.api("GET", "/users/bob").json()["servers"]


def check_bob_with_his_token(run: Run, repo_url: str, link_url: str) -> None:
    for body, field in [({"host": run.forge.base_url, "token": "has space in it"}, "token:"),
                        ({"host": "https://169.254.169.254", "token": BOB_TOKEN}, "host:"),
                        ({"host": run.forge.base_url, "token": BOB_TOKEN, "username": "a:b"},
                         "username:")]:  # fmt: skip
        bad = run.service("POST", "api/credentials", "bob", json=body)
        assert bad.status_code == 400 and field in bad.json()["message"], bad.text
    r = run.service("POST", "api/credentials", "bob",
                    json={"host": run.forge.base_url, "token": BOB_TOKEN})  # fmt: skip
    assert r.status_code == 201, r.text
    bob = Browser(run.hub, "bob")
    bob.get(link_url)
    launched = bob.post_form(link_url + "/launch", {"action": "launch"})
    assert launched.status_code == 200, launched.text[-500:]
    wait_for(lambda: run.hub.api("GET", "/users/bob").json()["servers"].get("", {}).get("ready"),
             timeout=120, what="bob's server from the private image")  # fmt: skip
    run.hub.stop_server("bob")
    hit = run.service("POST", "api/builds", "bob", json={"repo": repo_url})
    assert hit.status_code == 200 and hit.json()["cache_hit"] is True, hit.text
    gone = run.service("DELETE", "api/credentials", "bob", params={"host": run.forge.base_url})
    assert gone.status_code == 204
    again = run.service("POST", "api/builds", "bob", json={"repo": repo_url})
    assert again.status_code == 403, again.text
