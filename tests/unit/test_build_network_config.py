"""The build network's configuration: executor trait -> env -> engine, and the preflight line.

Pure parts and a real subprocess; the network itself is proven by
tests/integration/test_build_network.py (a real build against real listeners).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from fancy_env.builder.executors.base import BuildJob
from fancy_env.builder.executors.docker import DockerExecutor
from fancy_env.builder.r2d_engine import (
    DEFAULT_BUILD_NETWORK,
    NETWORK_ENV,
    DockerAPIEngine,
    missing_network_message,
)
from fancy_env.up import BUILD_NETWORK, build_network_problem

JOB = BuildJob("b1", "http://127.0.0.1:1/r.git", "main", "0" * 40, "", "img:1", False)


@pytest.mark.parametrize(
    ("network", "present", "script", "fix_has"),
    [
        ("fancy-env-build", True, Path("/x/scripts/setup.sh"), None),
        ("host", False, None, None),
        ("fancy-env-build", False, Path("/x/scripts/setup.sh"), "bash /x/scripts/setup.sh"),
        ("fancy-env-build", False, None, "scripts/build-network.sh up"),
    ],
)
def test_build_network_problem(
    network: str, present: bool, script: Path | None, fix_has: str | None
) -> None:
    problem = build_network_problem(network, present, script)
    if fix_has is None:
        assert problem is None
        return
    assert problem is not None and problem.check == "build-network"
    assert problem.message == f"the build network {network} is missing"
    assert fix_has in problem.fix and "\n" not in problem.render().split("\n", 1)[0]


def test_defaults_agree() -> None:
    assert DockerExecutor().build_network == DEFAULT_BUILD_NETWORK == BUILD_NETWORK


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "fancy-env-build"),
        ({NETWORK_ENV: "other-net"}, "other-net"),
        ({NETWORK_ENV: ""}, "fancy-env-build"),
    ],
)
def test_engine_network_from_env(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv(NETWORK_ENV, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert DockerAPIEngine(parent=None).network_mode == expected


@pytest.mark.parametrize("mode", ["host", "none", "container:abc"])
def test_builtin_modes_need_no_lookup(mode: str) -> None:
    engine = DockerAPIEngine(parent=None)
    engine.network_mode = mode
    engine.check_network()  # no client is ever made
    assert engine._client is None


def test_missing_network_message_names_the_fix() -> None:
    message = missing_network_message("nope")
    assert "'nope'" in message and "scripts/setup.sh" in message and "\n" not in message


def test_executor_hands_the_network_to_repo2docker() -> None:
    probe = "import os; print(os.environ['FANCY_ENV_BUILD_NETWORK'])"
    executor = DockerExecutor(
        repo2docker_command=[sys.executable, "-c", probe], build_network="boxed-net"
    )
    seen: list[tuple[str, str]] = []
    # the repo2docker step alone (the fetch before it needs a real remote: see test_checkout)
    emit = lambda phase, message: seen.append((phase, message))  # noqa: E731
    asyncio.run(executor._repo2docker(JOB, "/nonexistent-context", emit))
    assert ("fetching", "boxed-net") in seen
