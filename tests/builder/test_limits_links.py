"""`POST api/links` and `GET api/links` refuse deep, oversized and out-of-range input with a
4xx naming the field: a real hub with the sharing service (JupyterHub's mock single-user
servers; no server is started here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.db import Databases
from tests.support.hub import HubProcess
from tests.support.sharing import sharing_service_config

pytestmark = pytest.mark.slow

PROFILES = [{"display_name": "Small", "slug": "small", "default": True}]
SERVICE_CONFIG = f"c.FancyEnvSharing.profile_list = {PROFILES!r}\n"
HUB_CONFIG = 'c.JupyterHub.spawner_class = "jupyterhub.tests.mocking.MockSpawner"\n'
API = "services/fancy-env/api/links"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, db_backend: Databases) -> Iterator[HubProcess]:
    """One hub per database backend (the module runs once per backend)."""
    state: Path = tmp_path_factory.mktemp(f"limits-links-hub-{db_backend.backend}")
    hub = HubProcess(
        state, config=HUB_CONFIG + sharing_service_config(state / "svc", SERVICE_CONFIG)
    )
    hub.start()
    try:
        hub.api("POST", "/users/alice")
        yield hub
    finally:
        hub.stop()


def call(hub: HubProcess, method: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"token {hub.user_token('alice')}"}
    return requests.request(method, hub.url + API, headers=headers, timeout=60, **kw)


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ("[" * 10_000 + "]" * 10_000, 400, "body: JSON nested 10000 levels deep; at most 32"),
        ('{"profile": "small", "options": ' + "{" * 40 + "}" * 40 + "}", 400, "at most 32"),
        ('{"profile": "small", "note": "' + "x" * 70_000 + '"}', 413, "body: the request body"),
        ("{nope", 400, "body: the request body must be JSON"),
    ],
)
def test_link_bodies(hub: HubProcess, data: str, status: int, words: str) -> None:
    r = call(hub, "POST", data=data)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]


def test_a_good_body_still_works(hub: HubProcess) -> None:
    r = call(hub, "POST", json={"profile": "small"})
    assert r.status_code == 201, r.text
    links = call(hub, "GET", params={"limit": "1"}).json()["links"]
    assert [link["id"] for link in links] == [r.json()["id"]]
    assert call(hub, "GET", params={"offset": "1"}).json()["links"] == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"limit": "-1"}, "limit: must be an integer from 1 to 500, not -1"),
        ({"limit": "abc"}, "limit: must be an integer from 1 to 500"),
        ({"limit": "100000"}, "not 100000"),
        ({"offset": "-1"}, "offset: must be an integer from 0 to 10000"),
        ({"offset": "1e9"}, "offset: must be an integer"),
    ],
)
def test_link_listing_ranges(hub: HubProcess, params: dict[str, str], words: str) -> None:
    r = call(hub, "GET", params=params)
    assert r.status_code == 400, r.text
    assert words in r.json()["message"]
