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
from tests.support.registry import shared_auth_file

SINGLEUSER_IMAGE = os.environ.get("FANCY_ENV_SINGLEUSER_IMAGE", "fancy-env/singleuser:latest")
REGISTRY = os.environ.get("FANCY_ENV_REGISTRY", "127.0.0.1:5000")
# The shared registry takes pushes only with setup.sh's credentials: every hub a test starts
# (fancy_env.setup reads $FANCY_ENV_REGISTRY_AUTH) and every BuilderProcess gets their path.
_REGISTRY_AUTH = shared_auth_file()
if _REGISTRY_AUTH is not None:
    os.environ.setdefault("FANCY_ENV_REGISTRY_AUTH", str(_REGISTRY_AUTH))
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


# Image name prefixes under which tests build; the engine's images under them are removed at
# the end of a session that ran docker tests (only the tags that appeared during it). The
# registry at 127.0.0.1:5000 is shared by concurrent sessions and left alone.
TEST_IMAGE_PREFIXES = (
    f"{REGISTRY}/fancy-env-test/",
    f"{REGISTRY}/fancy-env-form-e2e/",
    f"{REGISTRY}/fancy-env-share-e2e/",
    f"{REGISTRY}/fancy-env-binder-e2e/",
)


def _test_images() -> set[str]:
    """The engine's images under the test prefixes (empty when there is no engine)."""
    if not shutil.which("docker"):
        return set()
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True,
    )  # fmt: skip
    return {name for name in out.stdout.split() if name.startswith(TEST_IMAGE_PREFIXES)}


@pytest.fixture(scope="session", autouse=True)
def remove_test_images(request: pytest.FixtureRequest) -> Iterator[None]:
    """At the end of a session that ran `docker` tests, remove from the engine the images
    that appeared under the test prefixes (set FANCY_ENV_KEEP_TEST_IMAGES=1 to keep them).
    Images a container still uses stay (`docker rmi` without force). test_retention removes
    its own (unique prefixes, own registries) itself."""
    ran_docker = any(item.get_closest_marker("docker") for item in request.session.items)
    before = _test_images() if ran_docker else set()
    yield
    if not ran_docker or os.environ.get("FANCY_ENV_KEEP_TEST_IMAGES"):
        return
    names = sorted(_test_images() - before)
    for start in range(0, len(names), 50):
        subprocess.run(["docker", "rmi", *names[start : start + 50]], capture_output=True)
