"""scripts/setup.sh's registry section, on a state dir and port of the test's own.

An unauthenticated registry that the script started earlier (what every machine ran before
registry auth) is restarted by its PID with htpasswd auth; a second run is a quick check that
changes nothing; the credentials file is a 0600 Docker config JSON in a 0700 state dir, and the
password is printed nowhere. The engine and images setup.sh checks are the machine's own
(already there: `docker info` answers, so no second dockerd is started).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.net import free_port, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]

OLD_CONFIG = """version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {state}/registry}}
  delete: {{enabled: true}}
http:
  addr: {addr}
"""


@pytest.fixture
def old_registry(tmp_path: Path, docker_engine: str) -> Iterator[tuple[Path, str, int]]:
    state = tmp_path / "state"
    state.mkdir()
    addr = f"127.0.0.1:{free_port()}"
    (state / "registry.yml").write_text(OLD_CONFIG.format(state=state, addr=addr))
    proc = subprocess.Popen(
        ["setsid", "docker-registry", "serve", str(state / "registry.yml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    (state / "registry.pid").write_text(f"{proc.pid}\n")
    wait_for(lambda: _code(addr) == 200, timeout=20, what="old registry")
    yield state, addr, proc.pid
    proc.kill()
    proc.wait()
    pid_file = state / "registry.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if pid != proc.pid:
            subprocess.run(["kill", str(pid)], check=False)


def _code(addr: str) -> int:
    try:
        return requests.get(f"http://{addr}/v2/", timeout=2).status_code
    except requests.ConnectionError:
        return 0


def _setup(state: Path, addr: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FANCY_ENV_STATE": str(state), "FANCY_ENV_REGISTRY": addr}
    return subprocess.run(
        ["bash", str(ROOT / "scripts/setup.sh")], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_setup_restarts_its_old_registry_with_auth(old_registry: tuple[Path, str, int]) -> None:
    state, addr, old_pid = old_registry
    first = _setup(state, addr)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"restarting docker-registry (PID {old_pid})" in first.stdout
    assert _code(addr) == 401, "anonymous requests are refused now"

    auth_file = state / "registry-auth.json"
    entry = json.loads(auth_file.read_text())["auths"][addr]
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    assert len(password) >= 32
    assert requests.get(f"http://{addr}/v2/", auth=(user, password), timeout=5).status_code == 200
    for name in ("registry-auth.json", "registry.htpasswd", "registry.yml"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    config = (state / "registry.yml").read_text()
    assert "htpasswd:" in config and "delete: {enabled: true}" in config
    assert password not in first.stdout + first.stderr + config
    assert password not in (state / "registry.htpasswd").read_text()

    t0 = time.monotonic()
    second = _setup(state, addr)
    took = time.monotonic() - t0
    assert second.returncode == 0, second.stdout + second.stderr
    assert "did: none" in second.stdout, second.stdout
    assert json.loads(auth_file.read_text())["auths"][addr] == entry, "same password"
    assert took < 10, f"a second run is a quick check ({took:.1f} s)"
    assert password not in second.stdout + second.stderr
