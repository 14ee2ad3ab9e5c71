"""A `profile_list` with a set in `allowed_groups`, with sharing on (issue 10, item 3).

Before: `json.dumps(..., default=str)` handed the service the string `"{'staff'}"` and it
failed to start. Now the hub and the service start, and the group rule holds in both: the
spawner (form and REST) and the link service (creating, opening and launching a link).

One real hub for the module; the spawner is FancySpawnerMixin over JupyterHub's MockSpawner
(a real single-user process, no Docker) and the service uses the fake executor: this is about
config and permissions, not images. sam is in `staff`, olga is not.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.builder import ROOT
from tests.support.hub import HubProcess
from tests.support.net import free_port, wait_for
from tests.support.sharing import Browser

pytestmark = [pytest.mark.slow]
PREFIX = "services/fancy-env/"

HUB_CONFIG = """
import fancy_env
from fancy_env.sharing.hubsetup import enable_sharing


c.JupyterHub.spawner_class = "tests.support.mockspawner.FancyMockSpawner"
c.FancyMockSpawner.profile_list = [
    {"display_name": "Plain", "slug": "plain", "default": True},
    {"display_name": "Staff only", "slug": "staff", "allowed_groups": {"staff"},
     "kubespawner_override": {"environment": {"STAFF": "1"}}},
]
c.JupyterHub.load_groups = {"staff": {"users": ["sam"]}}
service = fancy_env.setup(c, state_dir=%(state)r, port=%(port)d, executor="fake")
enable_sharing(c, service, options={"stop_timeout": 30})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    root = tmp_path_factory.mktemp("set-groups")
    config = HUB_CONFIG % {"state": str(root / "hub" / "fancy-env"), "port": free_port()}
    hub = HubProcess(root / "hub", config=textwrap.dedent(config), env={"PYTHONPATH": str(ROOT)})
    try:
        hub.start()
        wait_for(lambda: requests.get(hub.url + PREFIX + "health", timeout=2).ok, timeout=30,
                 what="the build service (with sharing) behind the hub")  # fmt: skip
        for name in ("sam", "olga"):
            hub.api("POST", f"/users/{name}")
        yield hub
    finally:
        hub.stop()


def service_file(hub: HubProcess) -> Path:
    return hub.state / "fancy-env" / "service.json"


def form_profiles(browser: Browser, user: str) -> list[str]:
    page = browser.get(f"/hub/spawn/{user}")
    assert page.status_code == 200, page.text[-300:]
    m = re.search(
        r'<script type="application/json" id="fancy-env-config">(.*?)</script>', page.text
    )
    assert m, "no form config on the spawn page"
    return [p["slug"] for p in json.loads(m.group(1))["profiles"]]


def server(hub: HubProcess, user: str) -> dict[str, Any]:
    return dict(hub.api("GET", f"/users/{user}").json()["servers"].get("", {}))


def stop(hub: HubProcess, user: str) -> None:
    hub.stop_server(user)


def spawn_form_post(browser: Browser, user: str, profile: str) -> requests.Response:
    xsrf = browser.session.cookies.get("_xsrf", path="/hub/") or ""
    return browser.session.post(
        browser.hub.url + f"hub/spawn/{user}",
        data={"profile": profile, "_xsrf": xsrf},
        timeout=60,
    )


def link_api(hub: HubProcess, user: str, body: dict[str, Any]) -> requests.Response:
    token = hub.user_token(user)
    return requests.post(hub.url + PREFIX + "api/links", json=body, timeout=60,
                         headers={"Authorization": f"token {token}"})  # fmt: skip


def test_hub_and_service_start_with_the_set(hub: HubProcess) -> None:
    stored = json.loads(service_file(hub).read_text())
    staff = stored["config"]["FancyEnvSharing"]["profile_list"][1]
    assert staff["allowed_groups"] == {"$frozenset": ["staff"]}  # a set, not "{'staff'}"
    assert "kubespawner_override" not in json.dumps(stored)  # overrides stay in the hub
    assert "checks no profile" not in hub.tail(400)  # the service knows the profiles


def test_form_shows_and_launches_staff_only_for_staff(hub: HubProcess) -> None:
    sam, olga = Browser(hub, "sam"), Browser(hub, "olga")
    assert form_profiles(sam, "sam") == ["plain", "staff"]
    assert form_profiles(olga, "olga") == ["plain"]

    refused = spawn_form_post(olga, "olga", "staff")
    assert 400 <= refused.status_code < 500, refused.text[-400:]
    assert "staff" in refused.text and "profile" in refused.text
    assert not server(hub, "olga")
    rest = hub.api("POST", "/users/olga/server", json={"profile": "staff"})
    assert 400 <= rest.status_code < 500 and "staff" in rest.json()["message"], rest.text
    assert not server(hub, "olga")

    launched = spawn_form_post(sam, "sam", "staff")
    assert launched.status_code == 200, launched.text[-400:]
    wait_for(lambda: server(hub, "sam").get("ready"), timeout=60, what="sam's server")
    assert server(hub, "sam")["user_options"]["profile"] == "staff"
    stop(hub, "sam")


def test_links_keep_the_group_rule(hub: HubProcess) -> None:
    # olga may not create a link to what she may not launch (the service's check)
    own = link_api(hub, "olga", {"profile": "staff"})
    assert own.status_code == 403, own.text
    assert "staff" in own.json()["message"]

    link = link_api(hub, "sam", {"profile": "staff"})
    assert link.status_code == 201, link.text
    url = link.json()["url"]

    olga = Browser(hub, "olga")
    page = olga.get(url)
    assert page.status_code == 403 and "staff" in page.text, page.text[-400:]
    # a crafted launch, with a good _xsrf (from a page of a link olga may open)
    plain = olga.get(link_api(hub, "sam", {"profile": "plain"}).json()["url"])
    assert plain.status_code == 200, plain.text[-400:]
    crafted = olga.post_form(url + "/launch", {"action": "launch"}, page=plain.text)
    assert crafted.status_code == 403 and "staff" in crafted.text, crafted.text[-400:]
    assert not server(hub, "olga")

    sam = Browser(hub, "sam")
    assert sam.get(url).status_code == 200
    launched = sam.post_form(url + "/launch", {"action": "launch"})
    assert launched.status_code == 200, launched.text[-400:]
    wait_for(lambda: server(hub, "sam").get("ready"), timeout=60, what="sam's server")
    assert server(hub, "sam")["user_options"]["profile"] == "staff"
    stop(hub, "sam")
