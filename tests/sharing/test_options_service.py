"""Admin options against a real hub under a base_url: one-click launch allowed, and users
without `shares!user` (JupyterHub's default) — the share page says what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.sharing.conftest import HUB_CONFIG, PROFILES
from tests.support.db import Databases
from tests.support.hub import HubProcess
from tests.support.net import wait_for
from tests.support.sharing import Browser, sharing_service_config

BASE = "/jh/"
PREFIX = "services/fancy-env/"
SERVICE_CONFIG = f"""
c.FancyEnvSharing.profile_list = {PROFILES!r}
c.FancyEnvSharing.allow_one_click_launch = True
"""


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, db_backend: Databases
) -> Iterator[HubProcess]:  # db_backend: one hub per database
    state: Path = tmp_path_factory.mktemp("sharing-options-hub")
    config = HUB_CONFIG + sharing_service_config(state / "svc", SERVICE_CONFIG, share_scope=False)
    hub = HubProcess(state, config=config, base_url=BASE)
    hub.start()
    try:
        for name in ("alice", "bob"):
            hub.api("POST", f"/users/{name}")
        yield hub
    finally:
        hub.stop()


def test_one_click_link_under_base_url(hub: HubProcess) -> None:
    token = hub.user_token("alice")
    r = requests.post(hub.url + PREFIX + "api/links", headers={"Authorization": f"token {token}"},
                      json={"profile": "small", "autostart": True}, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["url"].startswith(BASE + PREFIX + "l/")
    bob = Browser(hub, "bob")
    page = bob.get(link["url"])
    assert page.status_code == 200
    assert "Launching…" in page.text and "form.submit()" in page.text
    assert f'href="{BASE}hub/home"' in page.text  # links derived from the service prefix
    # what the page's script does: post the launch form
    launched = bob.post_form(link["url"] + "/launch", {"action": "launch"}, page=page.text)
    assert f"{BASE}hub/spawn-pending/bob" in launched.url or f"{BASE}user/bob/" in launched.url
    wait_for(lambda: hub.api("GET", "/users/bob").json()["servers"].get("", {}).get("ready"),
             timeout=30, what="bob's server")  # fmt: skip
    # with a server running, one-click never replaces it: the choices are shown instead
    again = bob.get(link["url"])
    assert "Launching…" not in again.text and 'value="replace"' in again.text
    hub.api("DELETE", "/users/bob/server")


def test_share_page_without_shares_scope(hub: HubProcess) -> None:
    hub.api("POST", "/users/alice/server", json={"user_options": {"profile": "small"}})
    wait_for(lambda: hub.api("GET", "/users/alice").json()["servers"].get("", {}).get("ready"),
             timeout=30, what="alice's server")  # fmt: skip
    alice = Browser(hub, "alice")
    page = alice.get(f"{BASE}{PREFIX}share")
    assert page.status_code == 200
    refused = alice.post_form(f"{BASE}{PREFIX}share", {"action": "create", "expires_in": "3600"})
    assert refused.status_code == 403
    assert "shares!user" in refused.text and "may not share servers" in refused.text
    hub.api("DELETE", "/users/alice/server")
