"""A FancySpawnerMixin over JupyterHub's MockSpawner, for hub tests that need the spawn form,
its checks and the build confirmation but not a container (a real single-user process).

Hub configs name it as `c.JupyterHub.spawner_class = "tests.support.mockspawner.FancyMockSpawner"`
(the hub needs the repository root on PYTHONPATH, as tests/support/hub.py's callers set).
"""

from __future__ import annotations

from typing import Any

from jupyterhub.tests.mocking import MockSpawner
from traitlets import List

from fancy_env.spawner_base import FancySpawnerMixin


class FancyMockSpawner(FancySpawnerMixin, MockSpawner):  # type: ignore[misc]
    profile_list = List(config=True, help="KubeSpawner's profile_list.")

    async def start(self) -> Any:
        await self.load_user_options()
        return await super().start()
