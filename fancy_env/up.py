"""`fancy-env up`: a complete hub on one machine, in one command.

Starts JupyterHub (a subprocess in its own session) with FancyDockerSpawner, the build service
(`fancy_env.setup(c)`: Docker executor, the local engine as cache, SQLite) and
configurable-http-proxy, everything under ONE state directory. The generated hub config is a
Python file in that directory; a normal `jupyterhub_config.py` passed with `--config` is loaded
after our defaults and wins. Ctrl-C (SIGINT, or SIGTERM/SIGHUP) stops everything and leaves no
container, no process and no listening port behind, and signals nothing it did not start
(`ChildProcesses`).

The pure parts (preflight verdicts, `/proc/net/tcp` parsing, config rendering) do no I/O and
are tested with parameter tables in `tests/unit/test_preflight.py`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import pprint
import signal
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from ._version import __version__

LABEL = "fancy-env.up"
MARKER_ENV = "FANCY_ENV_UP_ID"
SINGLEUSER_IMAGE = "fancy-env/singleuser:latest"
SETUP_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "setup.sh"
BUILD_NETWORK = "fancy-env-build"  # DockerExecutor.build_network's default
LOOPBACK_REPOS = r"http://(127\.0\.0\.1|localhost)(:[0-9]+)?/.*"
PUBLIC_REPOS = r"https://.*"


class Shutdown(Exception):
    """Raised by our signal handler: stop everything, then exit."""


# --------------------------------------------------------------------------------------------
# Pure parts: no I/O here.


@dataclass(frozen=True)
class Problem:
    """A failed preflight check: what is wrong (one line) and the fix (one line)."""

    check: str
    message: str
    fix: str

    def render(self) -> str:
        return f"fancy-env up: {self.message}\n    fix: {self.fix}"


def docker_problem(error: str | None) -> Problem | None:
    """Verdict on the Docker engine probe (`error` is None when `ping` answered)."""
    if error is None:
        return None
    return Problem(
        "docker",
        f"Docker is not reachable ({first_line(error) or 'no answer'})",
        "start it with `bash scripts/setup.sh` (starts dockerd), or set DOCKER_HOST to its socket",
    )


def first_line(text: str, limit: int = 160) -> str:
    """The first non-empty line of an error, shortened: preflight messages are one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:limit] if lines else ""


def image_problem(image: str, present: bool, setup_script: Path | None) -> Problem | None:
    """Verdict on the single-user image: missing means servers cannot start."""
    if present:
        return None
    if setup_script is not None:
        fix = (
            f"run `bash {setup_script}` (builds it from a debootstrap base), or pass --build-image"
        )
    else:
        fix = f"build or pull {image} (a clone's scripts/setup.sh builds it), or set --image"
    return Problem("image", f"the single-user image {image} is missing", fix)


def port_problem(ip: str, port: int, in_use: bool, holder: str | None = None) -> Problem | None:
    """Verdict on the public port: something else already listens there."""
    if not in_use:
        return None
    who = f" by {holder}" if holder else ""
    return Problem(
        "port",
        f"port {port} on {ip} is taken{who}",
        f"pass another one with --port (e.g. --port {port + 1}) or stop what listens on {port}",
    )


#: files the hub creates in the state dir, made 0600 before it does
PRIVATE_FILES = ("jupyterhub.sqlite", "jupyterhub.log")


def private_state(state: str | Path) -> None:
    """Make the state directory its owner's only: the directory 0700, each file in it 0600,
    and the hub's database and log created 0600 before the hub opens them (SQLite takes an
    empty file as a new database). Run by the generated hub config at every start."""
    top = Path(state)
    top.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(top, 0o700)
    for name in PRIVATE_FILES:
        os.close(os.open(top / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    for path in top.iterdir():
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o600)
        elif path.is_dir() and not path.is_symlink():
            os.chmod(path, 0o700)


def running_problem(state_dir: Path, hub_pid: int | None) -> Problem | None:
    """Verdict on an earlier `up` of the same state dir whose hub still runs."""
    if hub_pid is None:
        return None
    return Problem(
        "running",
        f"another fancy-env up already runs a hub from {state_dir} (pid {hub_pid})",
        "stop it (Ctrl-C in its terminal) or pass another --state-dir",
    )


def build_network_problem(network: str, present: bool, setup_script: Path | None) -> Problem | None:
    """Verdict on the Docker network builds run in: missing means every build fails."""
    if present or network == "host":
        return None
    if setup_script is not None:
        fix = f"run `bash {setup_script}` (creates it with scripts/build-network.sh up)"
    else:
        fix = "run scripts/setup.sh from a clone (scripts/build-network.sh up creates it)"
    return Problem("build-network", f"the build network {network} is missing", fix)


def proxy_problem(found: str | None) -> Problem | None:
    """Verdict on configurable-http-proxy being on PATH."""
    if found:
        return None
    return Problem(
        "proxy",
        "configurable-http-proxy is not on PATH",
        "run `bash scripts/setup.sh` or `npm install -g configurable-http-proxy`",
    )


def parse_listening(proc_net_tcp: str) -> list[tuple[str, int, int]]:
    """Listening sockets `(ip, port, inode)` from the text of /proc/net/tcp (IPv4 only).

    Lines look like `0: 0100007F:1F90 00000000:0000 0A ... 0 12345 ...`; state 0A is LISTEN.
    """
    found = []
    for line in proc_net_tcp.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != "0A":
            continue
        hex_ip, hex_port = parts[1].split(":")
        ip = ".".join(str(b) for b in reversed(bytes.fromhex(hex_ip)))
        found.append((ip, int(hex_port, 16), int(parts[9])))
    return found


def up_id_for(state_dir: Path) -> str:
    """A short, stable id for one state directory: labels, container names, env marker."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:10]


def repo_patterns(allow_loopback: bool) -> list[str]:
    """Full-match patterns of the repositories the default profiles may build."""
    return [PUBLIC_REPOS, LOOPBACK_REPOS] if allow_loopback else [PUBLIC_REPOS]


def default_profile_list(image: str, allow_loopback: bool) -> list[dict[str, Any]]:
    """A small and a large profile, both on the local image, both able to build repositories."""
    build = {"enabled": True, "allowed_repos": repo_patterns(allow_loopback)}
    return [
        {
            "display_name": "Small",
            "slug": "small",
            "description": "1 CPU, 1 GB of memory. Good for notebooks and light work.",
            "default": True,
            "kubespawner_override": {"image": image, "cpu_limit": 1.0, "mem_limit": "1G"},
            "repository_build": build,
        },
        {
            "display_name": "Large",
            "slug": "large",
            "description": "2 CPUs, 4 GB of memory. For heavier data work.",
            "kubespawner_override": {"image": image, "cpu_limit": 2.0, "mem_limit": "4G"},
            "repository_build": build,
        },
    ]


@dataclass(frozen=True)
class HubSettings:
    """Everything the generated hub config depends on."""

    state_dir: Path
    ip: str
    port: int
    hub_port: int
    proxy_api_port: int
    builder_port: int
    base_url: str = "/"
    image: str = SINGLEUSER_IMAGE
    allow_loopback_repos: bool = False
    user_config: Path | None = None
    sharing: bool = True
    up_id: str = ""
    profile_list: list[dict[str, Any]] = field(default_factory=list)
    registry: str = ""  # host:port: push builds there (and cache-check there); "" = engine only
    registry_credentials_file: str = ""  # its Docker config JSON (setup.sh's registry-auth.json)


CONFIG_TEMPLATE = """\
# Generated by `fancy-env up` {version} at {when}; rewritten at every start.
# Put your own settings in a jupyterhub_config.py and pass `fancy-env up --config FILE`; it is
# loaded at the end of this file, so it wins.
import os

import fancy_env

c = get_config()  # noqa: F821
STATE = {state!r}
# the state directory is 0700 and every file in it 0600 (the hub's database and log included)
from fancy_env.up import private_state  # noqa: E402

private_state(STATE)

c.JupyterHub.ip = {ip!r}
c.JupyterHub.port = {port}
c.JupyterHub.base_url = {base_url!r}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = os.path.join(STATE, "proxy.pid")
c.JupyterHub.pid_file = os.path.join(STATE, "jupyterhub.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(STATE, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(STATE, "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# A shared password, generated and printed once per `fancy-env up` (never written to disk).
# See docs/howto-authenticators.md to switch to Native, PAM or OAuth.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ["FANCY_ENV_UP_PASSWORD"]
c.SharedPasswordAuthenticator.admin_password = os.environ["FANCY_ENV_UP_ADMIN_PASSWORD"]
c.Authenticator.admin_users = {{"admin"}}
c.Authenticator.allow_all = True

# Servers: containers on the local engine, host networking, labelled so `up` removes them.
c.JupyterHub.spawner_class = "fancy_env.spawner_docker.FancyDockerSpawner"
c.DockerSpawner.image = {image!r}
c.DockerSpawner.network_name = "host"
c.DockerSpawner.remove = True
c.DockerSpawner.prefix = "fancy-env-{up_id}"
c.DockerSpawner.extra_create_kwargs = {{"labels": {{{label!r}: {up_id!r}}}}}
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 90
c.FancyDockerSpawner.profile_list = {profile_list}

# The build service: Docker executor, {cache_where}, SQLite in the state dir.
fancy_env.setup(
    c,
    state_dir=os.path.join(STATE, "builder"),
    port={builder_port},
    allow_loopback_repos={allow_loopback_repos!r},{registry_args}
)
{user_config}{sharing}"""


SHARING = """
# Sharing: environment links and server share codes. After your config, so that it sees your
# profile_list; `fancy-env up --no-sharing` leaves it off.
from fancy_env.sharing.hubsetup import enable_sharing

enable_sharing(c, next(s for s in c.JupyterHub.services if s["name"] == "fancy-env"))
"""


def render_hub_config(s: HubSettings, when: datetime | None = None) -> str:
    """The text of the generated jupyterhub_config.py."""
    user = ""
    if s.user_config is not None:
        path = str(s.user_config)
        user = f"\n# Your own config, loaded last.\nload_subconfig({path!r})  # noqa: F821\n"
    profiles = pprint.pformat(s.profile_list, indent=1, width=96, sort_dicts=False)
    return CONFIG_TEMPLATE.format(
        version=__version__,
        when=(when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
        state=str(s.state_dir),
        ip=s.ip,
        port=s.port,
        base_url=s.base_url,
        hub_port=s.hub_port,
        proxy_api_port=s.proxy_api_port,
        builder_port=s.builder_port,
        image=s.image,
        up_id=s.up_id,
        label=LABEL,
        profile_list=profiles,
        allow_loopback_repos=s.allow_loopback_repos,
        user_config=user,
        sharing=SHARING if s.sharing else "",
        **registry_template_args(s),
    )


def registry_template_args(s: HubSettings) -> dict[str, str]:
    """The build service's registry lines: only the credentials' path, never the secret."""
    if not s.registry:
        return {"cache_where": "the local engine as cache", "registry_args": ""}
    lines = f"\n    image_prefix={s.registry.rstrip('/') + '/fancy-env/'!r},"
    if s.registry_credentials_file:
        lines += f"\n    registry_credentials_file={s.registry_credentials_file!r},"
    return {"cache_where": f"images pushed to {s.registry}", "registry_args": lines}


def default_registry_credentials(registry: str, setup_state: Path) -> str:
    """scripts/setup.sh's credentials file, if it holds an entry for `registry`."""
    path = setup_state / "registry-auth.json"
    try:
        entries = json.loads(path.read_text())["auths"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return str(path) if isinstance(entries, dict) and registry in entries else ""


def connect_host(ip: str) -> str:
    """Where a client on this machine reaches a server bound to `ip`."""
    return "127.0.0.1" if ip in ("", "0.0.0.0", "::") else ip


# --------------------------------------------------------------------------------------------
# Probes and effects.


def listening_ports() -> set[int]:
    """TCP ports (IPv4 and IPv6) something listens on, from /proc/net/tcp{,6}."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        if name.endswith("6"):
            ports |= {int(p[1].split(":")[1], 16) for p in _rows(text) if p[3] == "0A"}
        else:
            ports |= {port for _, port, _ in parse_listening(text)}
    return ports


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()[1:] if len(line.split()) >= 10]


def port_in_use(ip: str, port: int) -> bool:
    """True when binding (with SO_REUSEADDR, as the proxy does) fails."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip or "0.0.0.0", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def live_hub_pid(state_dir: Path) -> int | None:
    """The pid in the state dir's jupyterhub.pid, if that process still runs JupyterHub."""
    try:
        pid = int((state_dir / "jupyterhub.pid").read_text().strip())
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE
        return pid if alive and any("jupyterhub" in part for part in proc.cmdline()) else None
    except (OSError, ValueError, psutil.Error):
        return None


def docker_client() -> Any:
    import docker  # the SDK DockerSpawner uses: same socket, same DOCKER_HOST

    return docker.from_env(timeout=10)


def probe_docker() -> str | None:
    """None when the engine answers a ping, else the error text."""
    try:
        docker_client().ping()
    except Exception as e:  # noqa: BLE001 - every failure means "not reachable"
        return str(e) or type(e).__name__
    return None


def image_present(image: str) -> bool:
    import docker.errors

    try:
        docker_client().images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def network_present(name: str) -> bool:
    import docker.errors

    try:
        docker_client().networks.get(name)
    except docker.errors.NotFound:
        return False
    return True


def remove_containers(up_id: str) -> int:
    """Remove every container labelled for this `up`; return how many."""
    client = docker_client()
    found = client.containers.list(all=True, filters={"label": f"{LABEL}={up_id}"})
    for container in found:
        container.remove(force=True)
    return len(found)


#: prctl(2) option: orphaned descendants are re-parented to this process, not to init
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class ChildProcesses:
    """The processes this `up` started, directly or not, and nothing else.

    `up` is a child subreaper: when a parent in its tree dies first (the proxy or a service
    after the hub is killed, a build step of a crashed service), the orphan is re-parented to
    `up`, not to init, so `children(recursive=True)` of `up`'s own process is everything it
    started. `record()` also keeps the `psutil.Process` of each one seen (for systems without
    subreapers); psutil checks a process's start time before signalling it, so a pid reused
    by an unrelated process is never signalled. Nothing is chosen by command line, working
    directory or environment: a `tail -f` of the hub log or a shell in the state directory
    is not ours and is left alone.
    """

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.subreaper = become_subreaper()
        self.known: dict[int, psutil.Process] = {}

    def record(self, managed: frozenset[int] = frozenset()) -> None:
        """Remember every descendant now alive; reap re-parented orphans that ended (not the
        `managed` pids, whose `Popen` reaps them)."""
        try:
            found = self.me.children(recursive=True)
        except psutil.Error:
            return
        for proc in found:
            self.known.setdefault(proc.pid, proc)
        for proc in found:
            if proc.pid not in managed and _is_zombie(proc):
                try:
                    os.waitpid(proc.pid, os.WNOHANG)  # only succeeds for our own children
                except ChildProcessError:
                    pass

    def alive(self) -> list[psutil.Process]:
        """Our descendants now, and the recorded ones still running (same pid and start)."""
        self.record()
        procs = {p.pid: p for p in self.known.values() if p.is_running() and not _is_zombie(p)}
        self.known = dict(procs)
        return list(procs.values())

    def stop(self, grace: float = 10.0) -> tuple[int, int]:
        """SIGTERM what is left of ours, SIGKILL it after `grace` s; (signalled, killed)."""
        procs = self.alive()
        for proc in procs:
            _send(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            _send(proc, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
        return len(procs), len(alive)


def _is_zombie(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return True


def _send(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)  # psutil refuses a pid reused since it was recorded
    except psutil.Error:
        pass


def raise_shutdown(signum: int, _frame: Any) -> None:
    raise Shutdown(signal.Signals(signum).name)
