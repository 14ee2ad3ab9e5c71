"""A real hub with the standalone sharing service and JupyterHub's mock single-user server
(no Docker: these tests exercise the service; tests/e2e/test_sharing.py does the real thing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.db import Databases, both_databases
from tests.support.hub import HubProcess
from tests.support.sharing import sharing_service_config

PROFILES = [
    {
        "display_name": "Small",
        "slug": "small",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "py311": {"display_name": "Python 3.11", "default": True},
                    "r": {"display_name": "R", "allowed_groups": ["r-users"]},
                },
            },
            "tag": {
                "display_name": "Tag",
                "choices": {"latest": {"display_name": "Latest", "default": True}},
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Other tag",
                    "validation_regex": "v[0-9]+",
                },
            },
        },
    },
    {"display_name": "GPU", "slug": "gpu", "allowed_groups": ["gpu-users"]},
]
#: every test here runs on SQLite and on PostgreSQL (tests/support/db.py)
db_backend = both_databases(autouse=True)

SERVICE_CONFIG = f"""
c.FancyEnvSharing.profile_list = {PROFILES!r}
c.FancyEnvSharing.allow_named_servers = True
c.FancyEnvSharing.link_rate_limit = 15
c.FancyEnvSharing.link_rate_window = 3600
c.FancyEnvSharing.stop_timeout = 30
"""

HUB_CONFIG = """
from jupyterhub.spawner import SpawnException
from jupyterhub.tests.mocking import MockSpawner


class RefusingSpawner(MockSpawner):
    \"\"\"Refuses dave like fancy_env's validator refuses (403, the field and what is allowed),
    for a reason the sharing service cannot see beforehand.\"\"\"

    async def start(self):
        if self.user.name == "dave":
            error = SpawnException("x", reason="invalid_options", status_code=403)
            error.jupyterhub_message = "image: not for dave's course. Allowed: r."
            raise error
        return await super().start()


c.JupyterHub.spawner_class = RefusingSpawner
c.JupyterHub.allow_named_servers = True
c.JupyterHub.load_groups = {"gpu-users": {"users": ["alice"]}, "r-users": {"users": ["alice"]}}
"""


@pytest.fixture(scope="module")
def sharing_hub(
    tmp_path_factory: pytest.TempPathFactory, db_backend: Databases
) -> Iterator[HubProcess]:  # db_backend: one hub per database
    state: Path = tmp_path_factory.mktemp("sharing-hub")
    config = HUB_CONFIG + sharing_service_config(state / "svc", SERVICE_CONFIG)
    hub = HubProcess(state, config=config)
    hub.start()
    try:
        for name in ("alice", "bob", "carol", "dave"):
            hub.api("POST", f"/users/{name}")
        yield hub
    finally:
        hub.stop()
