"""The hub's home page links the sharing pages (a real hub rendering our template)."""

from __future__ import annotations

import pytest

from tests.support.hub import HubProcess

CONFIG = """
from fancy_env.sharing.hubsetup import enable_sharing
c.JupyterHub.spawner_class = "jupyterhub.tests.mocking.MockSpawner"
# registered without a URL (not running): the home page needs just its name
service = {"name": "fancy-env"}
c.JupyterHub.services.append(service)
enable_sharing(c, service, share_servers={share})
"""


@pytest.mark.parametrize(("base_url", "share"), [("/", True), ("/jh/", False)])
def test_home_page_shows_sharing_links(hub_factory, base_url: str, share: bool) -> None:
    hub: HubProcess = hub_factory(config=CONFIG.replace("{share}", str(share)), base_url=base_url)
    page = hub.login("alice").get(hub.url + "hub/home", timeout=30)
    assert page.status_code == 200
    assert "My Server" in page.text  # the hub's own home page is still there
    assert f'href="{base_url}services/fancy-env/links"' in page.text
    assert (f'href="{base_url}services/fancy-env/share"' in page.text) is share
