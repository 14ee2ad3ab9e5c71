"""`fancy-env up` end to end without a browser: start, health, a real server, Ctrl-C, nothing left.

Also the preflight checks as a user meets them: each failure is one line plus its fix, exit 2.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.gitserver import GitServer
from tests.support.net import free_port, wait_for
from tests.support.up_process import UpProcess, leftovers, up_id

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def up(tmp_path: Path, docker_engine: str) -> Iterator[UpProcess]:
    proc = UpProcess(tmp_path / "state")
    yield proc
    proc.force_cleanup()


def test_up_serves_a_hub_and_ctrl_c_leaves_nothing(up: UpProcess) -> None:
    up.start()
    assert up.url == f"http://127.0.0.1:{up.port}/"
    assert len(up.password) >= 8
    assert requests.get(up.url + "hub/health", timeout=10).status_code == 200
    config = (up.state / "jupyterhub_config.py").read_text()
    assert "fancy_env.setup(" in config and "FancyDockerSpawner" in config
    assert up.password not in config  # printed once, never written to disk

    # the build service and sharing answer through the proxy
    health = requests.get(up.url + "services/fancy-env/health", timeout=10)
    assert health.status_code == 200, health.text
    session = up.login("alice")
    links = session.get(up.url + "services/fancy-env/links", timeout=30)
    assert links.status_code == 200 and "services/fancy-env/links" in links.url, links.text[:300]

    # a second `up` on the same state dir is refused and leaves this one alone
    code, out = UpProcess(up.state).run_to_exit()
    assert code == 2 and "another fancy-env up already runs a hub" in out, out

    # a real server, so that Ctrl-C has a container to clean up
    r = session.post(
        up.url + "hub/spawn/alice",
        timeout=60,
        data={"profile": "small", "_xsrf": session.cookies.get("_xsrf", "", path="/hub/")},
    )
    assert r.status_code < 400, r.text[:500]
    wait_for(lambda: _server_ready(up, session), timeout=120, what="alice's server")
    containers, processes, ports = leftovers(up.state, up.generated_ports())
    assert len(containers) == 1, (containers, up.hub_log())
    assert processes and up.port in ports

    # a user's own processes naming the state dir or working in it: not `up`'s to stop
    tail = bystander(["tail", "-f", str(up.state / "jupyterhub.log")])
    shell = bystander(["sh", "-c", f"cd {up.state} && sleep 600"])
    spare = frozenset({tail.pid, shell.pid})
    _, before, _ = leftovers(up.state, set(), spare)
    try:
        t0 = time.monotonic()
        code = up.interrupt()
        stop_seconds = time.monotonic() - t0
        containers, processes, ports = leftovers(up.state, up.generated_ports(), spare)
        assert code == 0, up.output()
        assert containers == [], f"containers left: {containers}"
        assert processes == {}, f"processes left: {processes}"
        assert ports == set(), f"ports still listening: {ports}"
        assert "stopped (" in up.output()
        for proc in (tail, shell):
            assert proc.poll() is None, f"{proc.args} was stopped by up:\n{up.output()}"
        assert psutil.Process(shell.pid).children(recursive=True), "the shell's sleep was killed"
    finally:
        for proc in (tail, shell):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    stopped = next(line for line in up.output().splitlines() if "stopped (" in line)
    print(
        f"fancy-env up stopped in {stop_seconds:.1f} s with one running server and "
        f"{len(before)} hub processes; the tail -f and the shell in the state dir survived\n"
        f"{stopped}"
    )

    # every file of the state dir is the owner's only; pid files hold no secret (issue 9)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [up.state, *up.state.rglob("*")]}
    wrong = {
        str(p.relative_to(up.state.parent)): oct(m)
        for p, m in modes.items()
        if m != (0o700 if p.is_dir() else 0o600) and p.suffix != ".pid"
    }
    assert wrong == {}, wrong
    assert {"jupyterhub.sqlite", "jupyterhub.log", "service.json"} <= {p.name for p in modes}


def bystander(argv: list[str]) -> subprocess.Popen[bytes]:
    """A process of the user's, in its own session like a command in another terminal."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)


def _server_ready(up: UpProcess, session: requests.Session) -> bool:
    user = session.get(up.url + "hub/api/users/alice", timeout=10).json()
    if not user.get("servers", {}).get("", {}).get("ready"):
        return False
    # the server itself answers through the proxy (its landing page; its API wants a token)
    return session.get(up.url + "user/alice/", timeout=30).status_code == 200


def test_ctrl_c_during_a_build_leaves_nothing(
    up: UpProcess, git_server: GitServer, docker_engine: str
) -> None:
    """A repo2docker build is running (a `RUN sleep` step) when Ctrl-C arrives."""
    marker = f"sleep {170 + os.getpid() % 50}.5"  # unique command to find its build container
    repo = git_server.create("slow-env", {"Dockerfile": f"FROM {docker_engine}\nRUN {marker}\n"})
    up.extra = ["--allow-loopback-repos"]
    up.start()
    session = up.login("erin")
    xsrf = session.cookies.get("_xsrf", "", path="/hub/")
    r = session.post(
        up.url + "hub/api/users/erin/tokens",
        headers={"X-XSRFToken": xsrf},
        json={"note": "build", "expires_in": 600},
        timeout=30,
    )
    r.raise_for_status()
    api = up.url + "services/fancy-env/api/builds"
    auth = {"Authorization": f"token {r.json()['token']}"}
    r = requests.post(api, json={"repo": repo.url, "ref": "main"}, headers=auth, timeout=30)
    assert r.status_code in (200, 201, 202), r.text
    build_id = r.json()["id"]
    wait_for(lambda: _build_step_running(marker), timeout=180, what="the build's RUN step")
    assert requests.get(f"{api}/{build_id}", headers=auth, timeout=10).json()["status"] not in (
        "built",
        "failed",
    )

    assert up.interrupt() == 0, up.output()
    assert leftovers(up.state, up.generated_ports()) == ([], {}, set())
    wait_for(lambda: not _build_step_running(marker), timeout=30, what="the build step to end")


def _build_step_running(marker: str) -> bool:
    out = subprocess.run(
        ["docker", "ps", "--no-trunc", "--format", "{{.Command}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return marker in out


def test_restart_with_own_config_and_without_sharing(up: UpProcess, tmp_path: Path) -> None:
    mine = tmp_path / "jupyterhub_config.py"
    mine.write_text("c.JupyterHub.template_vars = {'announcement': 'from-my-config'}\n")
    up.extra = ["--config", str(mine), "--no-sharing"]
    up.start()
    first_password = up.password
    assert "from-my-config" in requests.get(up.url + "hub/login", timeout=10).text
    assert "enable_sharing" not in (up.state / "jupyterhub_config.py").read_text()
    assert up.interrupt() == 0

    up.extra = ["--base-url", "/jh/"]  # the same state dir again, defaults, under a prefix
    up.start()
    assert up.url == f"http://127.0.0.1:{up.port}/jh/"
    assert up.password != first_password  # a new password at each start
    health = requests.get(up.url + "services/fancy-env/health", timeout=10)
    assert health.status_code == 200, health.text
    assert "from-my-config" not in requests.get(up.url + "hub/login", timeout=10).text
    assert "enable_sharing" in (up.state / "jupyterhub_config.py").read_text()
    assert up.interrupt() == 0
    assert leftovers(up.state, up.generated_ports()) == ([], {}, set())


def test_preflight_port_taken(up: UpProcess) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        up.port = sock.getsockname()[1]
        code, out = up.run_to_exit()
    assert code == 2, out
    assert f"port {up.port} on 127.0.0.1 is taken" in out
    assert "fix: pass another one with --port" in out
    assert "Traceback" not in out


def test_preflight_docker_unreachable(up: UpProcess, tmp_path: Path) -> None:
    up.env = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    code, out = up.run_to_exit()
    assert code == 2, out
    assert "Docker is not reachable" in out and "scripts/setup.sh" in out
    assert "Traceback" not in out


def test_preflight_image_missing(up: UpProcess) -> None:
    up.extra = ["--image", "fancy-env/does-not-exist:never"]
    code, out = up.run_to_exit()
    assert code == 2, out
    assert "the single-user image fancy-env/does-not-exist:never is missing" in out
    assert "fix: run `bash " in out and "setup.sh" in out
    assert "Traceback" not in out


def test_preflight_user_config_missing(up: UpProcess, tmp_path: Path) -> None:
    up.extra = ["--config", str(tmp_path / "nope.py")]
    code, out = up.run_to_exit()
    assert code == 2 and "is not a file" in out, out


def test_hub_that_cannot_start_ends_up_cleanly(up: UpProcess, tmp_path: Path) -> None:
    mine = tmp_path / "broken_config.py"
    mine.write_text(
        "c.FancyDockerSpawner.profile_list = [{'display_name': 'No slug'}]\n"
        "c.FancyDockerSpawner.profile_list[0]['kubespawner_override'] = {'nope': 1}\n"
    )
    up.extra = ["--config", str(mine)]
    code, out = up.run_to_exit(timeout=120)
    assert code == 1, out
    assert "the hub exited with code" in out and "Traceback (most recent call last)" not in out
    assert leftovers(up.state, set()) == ([], {}, set())


def test_up_id_matches_package(tmp_path: Path) -> None:
    from fancy_env.up import up_id_for

    assert up_id(tmp_path) == up_id_for(tmp_path)
    assert free_port() > 0
