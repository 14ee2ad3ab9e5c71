"""Fixtures shared by all fancy_env tests.

Tests marked `docker` need the engine that scripts/setup.sh starts. In CI (CI=true) a
missing engine is a failure, never a skip: set FANCY_ENV_ALLOW_SKIP=1 locally to skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.db import Databases, both_databases
from tests.support.gitserver import GitServer
from tests.support.hub import HubProcess

SINGLEUSER_IMAGE = os.environ.get("FANCY_ENV_SINGLEUSER_IMAGE", "fancy-env/singleuser:latest")
REGISTRY = os.environ.get("FANCY_ENV_REGISTRY", "127.0.0.1:5000")
ARTIFACTS = Path(
    os.environ.get("FANCY_ENV_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)


def _docker_ready() -> bool:
    if not shutil.which("docker"):
        return False
    ok = subprocess.run(["docker", "image", "inspect", SINGLEUSER_IMAGE], capture_output=True)
    return ok.returncode == 0


def _require(ok: bool, what: str) -> None:
    if ok:
        return
    if os.environ.get("CI") or not os.environ.get("FANCY_ENV_ALLOW_SKIP"):
        pytest.fail(f"{what} is not available: run scripts/setup.sh --test first")
    pytest.skip(f"{what} not available (FANCY_ENV_ALLOW_SKIP=1)")


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The local single-user image name, after checking the engine has it."""
    _require(_docker_ready(), f"Docker engine with image {SINGLEUSER_IMAGE}")
    return SINGLEUSER_IMAGE


#: SQLite and PostgreSQL (tests/support/db.py); tests/builder and tests/sharing make it autouse
db_backend = both_databases()


@pytest.fixture
def db_url(db_backend: Databases, tmp_path: Path) -> str:
    """An empty database of its own for the test, once on SQLite and once on PostgreSQL."""
    return db_backend.url_for(tmp_path, "test.sqlite")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    _require(Path(path).exists(), "Debian chromium")
    return path


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    server = GitServer(tmp_path / "git").start()
    yield server
    server.stop()


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[type]:
    """Call `hub_factory(config=..., base_url=...)` to start real hubs; all stop at teardown."""
    started: list[HubProcess] = []

    def make(
        config: str = "",
        base_url: str = "/",
        env: dict[str, str] | None = None,
        name: str = "hub",
        start: bool = True,
    ) -> HubProcess:
        hub = HubProcess(tmp_path / name, config=config, base_url=base_url, env=env or {})
        started.append(hub)
        return hub.start() if start else hub

    yield make  # type: ignore[misc]
    for hub in started:
        hub.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
