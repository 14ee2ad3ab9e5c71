"""A build's RUN steps are boxed: package index yes, this machine no (issue 9, build item 3).

Everything is real: a loopback Git remote holding a Dockerfile `FROM fancy-env/singleuser`,
the build service as a subprocess with the Docker executor (real repo2docker, real engine,
the build network made by scripts/build-network.sh), a real JupyterHub with
configurable-http-proxy (its internal API port and its proxy API port are targets), the
registry on 127.0.0.1:5000, and two listeners this test starts on 0.0.0.0:P and 127.0.0.1:Q.

The RUN step is what an attacker's repository would do: `pip download six` (must work: the
package index is reachable) and a TCP connect to every target, each addressed via 127.0.0.1
and via the build network's gateway (the host's side of the bridge). Every connect must fail,
the test's listeners must accept nothing, and the image must still reach the registry (the
push is the engine's, from the host, not a RUN step's). The results are read from the build
log through the service's API, as the form would show them.
"""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer
from tests.support.hub import HubProcess
from tests.support.registry import registry_has

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NETWORK = "fancy-env-build"
REGISTRY = "127.0.0.1:5000"

PROBE = """\
import socket, sys
for spec in sys.argv[1:]:
    role, host, port = spec.split(",")
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        result = "CONNECTED"
    except OSError as e:
        result = "blocked:" + type(e).__name__
    finally:
        s.close()
    print(f"NETPROBE {role} {host}:{port} {result}", flush=True)
"""


class CountingListener:
    """A TCP listener that records every connection it accepts (it should see none)."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[tuple[str, int]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.accepted.append(peer)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def gateway_ip() -> str:
    out = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", NETWORK],
        capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.fixture
def build_network() -> str:
    check = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-network.sh"), "check"],
        capture_output=True, text=True,
    )  # fmt: skip
    if check.returncode != 0:
        pytest.fail("the build network is not set up: run scripts/setup.sh\n" + check.stdout)
    gateway = gateway_ip()
    assert re.fullmatch(r"[0-9.]+", gateway), gateway
    return gateway


@pytest.fixture
def listeners() -> Iterator[tuple[CountingListener, CountingListener]]:
    wildcard, loopback = CountingListener("0.0.0.0"), CountingListener("127.0.0.1")
    yield wildcard, loopback
    wildcard.close()
    loopback.close()


def probe_repo(base: str, targets: list[tuple[str, str, int]]) -> dict[str, str]:
    specs = " ".join(f"{role},{host},{port}" for role, host, port in targets)
    dockerfile = (
        f"FROM {base}\n"
        # the nonce is part of the command (comments are not): never a cached layer
        f"RUN echo nonce-{secrets.token_hex(8)} && pip download --no-deps -d /tmp/dl six\n"
        "COPY probe.py /tmp/probe.py\n"
        f"RUN python3 /tmp/probe.py {specs}\n"
    )
    return {"Dockerfile": dockerfile, "probe.py": PROBE}


def proxy_api_port(hub: HubProcess) -> int:
    text = (hub.state / "jupyterhub_config.py").read_text()
    m = re.search(r'ConfigurableHTTPProxy\.api_url = "http://127\.0\.0\.1:(\d+)"', text)
    assert m, "proxy api_url not found in the hub config"
    return int(m.group(1))


def test_run_step_reaches_the_index_but_nothing_on_this_machine(
    tmp_path: Path,
    git_server: GitServer,
    docker_engine: str,
    build_network: str,
    listeners: tuple[CountingListener, CountingListener],
    hub_factory: type,
) -> None:
    wildcard, loopback = listeners
    # the listeners work: a connection from here is accepted (then forgotten)
    for listener, host in ((wildcard, build_network), (loopback, "127.0.0.1")):
        socket.create_connection((host, listener.port), timeout=5).close()
    hub: HubProcess = hub_factory()
    svc = BuilderProcess(tmp_path / "builder", executor="docker").start()
    try:
        wildcard.accepted.clear()
        loopback.accepted.clear()
        roles = {
            "listener-0.0.0.0": wildcard.port,
            "listener-127.0.0.1": loopback.port,
            "build-service": svc.port,
            "hub-api": hub.hub_port,
            "proxy-api": proxy_api_port(hub),
            "proxy-public": hub.port,
            "registry": 5000,
        }
        targets = [
            (role, host, port)
            for role, port in roles.items()
            for host in ("127.0.0.1", build_network)
        ]
        repo = git_server.create("probe", probe_repo(docker_engine, targets))
        build = svc.post("alice", repo.url)
        assert build.status_code == 202, build.text
        events = svc.events(build.json()["id"], timeout=600)
        log = "\n".join(e["message"] for e in events)
        assert events[-1]["phase"] == "built", log[-3000:]
    finally:
        svc.stop()

    assert "Successfully downloaded six" in log, log[-3000:]
    results = dict(re.findall(r"^NETPROBE (\S+ \S+) (\S+)$", log, re.M))
    assert len(results) == len(targets), log[-3000:]
    connected = {target: r for target, r in results.items() if r == "CONNECTED"}
    assert not connected, f"a RUN step reached {sorted(connected)}"
    assert wildcard.accepted == [] and loopback.accepted == []
    # the engine's push (from the host, with the service's credentials) still reached it
    assert registry_has(build.json()["image"]), "the engine's push must still reach the registry"


def test_missing_build_network_fails_the_build_with_the_fix(
    tmp_path: Path, git_server: GitServer, docker_engine: str
) -> None:
    svc = BuilderProcess(
        tmp_path / "builder",
        executor="docker",
        config='c.DockerExecutor.build_network = "fancy-env-build-absent"\n',
    ).start()
    try:
        dockerfile = f"FROM {docker_engine}\nRUN echo never-runs-{secrets.token_hex(4)}\n"
        repo = git_server.create("nonet", {"Dockerfile": dockerfile})
        build = svc.post("alice", repo.url).json()
        events = svc.events(build["id"], timeout=300)
        record = svc.get(f"api/builds/{build['id']}").json()
    finally:
        svc.stop()
    assert events[-1]["phase"] == "failed"
    text = events[-1]["message"] + " " + str(record)
    assert "fancy-env-build-absent" in text and "scripts/setup.sh" in text, text
    assert not any("never-runs" in e["message"] and "Running in" in e["message"] for e in events)
