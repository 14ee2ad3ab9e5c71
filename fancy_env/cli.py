"""The `fancy-env` command: `fancy-env up` (a whole hub on this machine), `fancy-env build`
and `fancy-env gc` (image retention).

`build` belongs to the build service (`fancy_env.builder.cli_build`) and is imported only when
used, so `fancy-env up --help` never pulls in the build service's dependencies.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Integer, Unicode, default, validate
from traitlets.config import Application

from ._version import __version__
from .up import (
    BUILD_NETWORK,
    MARKER_ENV,
    SETUP_SCRIPT,
    SINGLEUSER_IMAGE,
    ChildProcesses,
    HubSettings,
    Problem,
    Shutdown,
    build_network_problem,
    connect_host,
    default_profile_list,
    default_registry_credentials,
    docker_problem,
    free_port,
    image_present,
    image_problem,
    listening_ports,
    live_hub_pid,
    network_present,
    port_in_use,
    port_problem,
    probe_docker,
    proxy_problem,
    raise_shutdown,
    remove_containers,
    render_hub_config,
    running_problem,
    up_id_for,
)


def say(*parts: object, file: Any = None, flush: bool = True, end: str = "\n") -> None:
    """print() that survives a closed terminal or pipe (Ctrl-C also hits `| tee`): cleanup
    must go on even when nobody can read about it."""
    try:
        print(*parts, file=file or sys.stdout, flush=flush, end=end)
    except OSError:
        pass


START_TIMEOUT = "start timeout"
USAGE = """usage: fancy-env COMMAND [options]

commands:
  up      run a complete hub on this machine until Ctrl-C (fancy-env up --help-all)
  build   build an image from a Git repository with the build service (fancy-env build --help)
  gc      remove old images per the retention policy (fancy-env gc --help; --dry-run)
  db      upgrade the build and links database, or show its revision (fancy-env db --help)
"""


def _default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "fancy-env", "hub")


class UpApp(Application):
    """Run a complete fancy_env hub on this machine until Ctrl-C."""

    name = "fancy-env up"
    description = (
        "Start JupyterHub with FancyDockerSpawner, the build service and configurable-http-proxy "
        "on this machine; print the URL and a generated password; Ctrl-C stops everything."
    )
    version = __version__

    ip = Unicode(
        "127.0.0.1",
        config=True,
        help="""Address the hub's public proxy listens on. The default keeps the hub on this
        machine; use 0.0.0.0 to let others on your network in (then switch to a real
        authenticator first: see docs/howto-authenticators.md).""",
    )
    port = Integer(
        8000,
        min=1,
        max=65535,
        config=True,
        help="""Public port of the hub (the proxy). Change it when 8000 is taken; the preflight
        check says so. The hub's internal API, the proxy's API and the build service use free
        loopback ports chosen at each start.""",
    )
    base_url = Unicode(
        "/",
        config=True,
        help="URL prefix of the hub, e.g. /jh/ behind a reverse proxy; starts and ends with /.",
    )
    state_dir = Unicode(
        config=True,
        help="""The one directory holding everything `up` keeps: generated hub config, hub
        database and cookie secret, build service database and logs, process logs. Delete it to
        start from scratch. Default: $XDG_STATE_HOME/fancy-env/hub (~/.local/state/...).""",
    )
    config_file = Unicode(
        "",
        config=True,
        help="""A normal jupyterhub_config.py loaded after our defaults, so it can override any
        of them (authenticator, profile_list, spawner options, ...).""",
    )
    image = Unicode(
        SINGLEUSER_IMAGE,
        config=True,
        help="""The single-user image of the default profiles (and the base of test repositories).
        scripts/setup.sh builds fancy-env/singleuser:latest locally.""",
    )
    allow_loopback_repos = Bool(
        False,
        config=True,
        help="""Also allow repository builds from http://127.0.0.1 and http://localhost (a Git
        server on this machine, as the tests use). Off by default: a hub must not let users
        make it fetch from its own loopback services.""",
    )
    registry = Unicode(
        "",
        config=True,
        help="""Push built images to this registry (`host:port`, e.g. 127.0.0.1:5000, the one
        scripts/setup.sh runs with htpasswd auth) instead of keeping them on the local engine
        only. Servers still start from the engine's copy; the build service alone holds the
        registry's credentials (registry_credentials_file).""",
    )
    registry_credentials_file = Unicode(
        "",
        config=True,
        help="""Docker config JSON with the registry's credentials (mode 0600). Default: the
        registry-auth.json scripts/setup.sh wrote ($FANCY_ENV_STATE, /var/lib/fancy-env as
        root), when it has an entry for --registry. Only its path goes into the hub config.""",
    )
    sharing = Bool(
        True,
        config=True,
        help="""Turn on sharing (environment links and server share codes, see docs/sharing.md)
        with `enable_sharing`. Off with --no-sharing, e.g. to try the form and builds alone.""",
    )
    build_image = Bool(
        False,
        config=True,
        help="""When the single-user image is missing, build it without asking by running
        scripts/setup.sh (needs root for apt; takes a few minutes the first time).""",
    )
    start_timeout = Float(
        90.0, config=True, help="Seconds to wait for the hub to answer /hub/health at start."
    )
    stop_timeout = Float(
        60.0,
        config=True,
        help="""Seconds to wait, after Ctrl-C, for the hub to stop its servers, services and
        proxy cleanly before everything left is killed.""",
    )

    aliases = {
        "ip": "UpApp.ip",
        "port": "UpApp.port",
        "base-url": "UpApp.base_url",
        "state-dir": "UpApp.state_dir",
        "config": "UpApp.config_file",
        "image": "UpApp.image",
        "registry": "UpApp.registry",
        "registry-credentials": "UpApp.registry_credentials_file",
        "log-level": "Application.log_level",
    }
    flags = {
        "allow-loopback-repos": (
            {"UpApp": {"allow_loopback_repos": True}},
            "Allow repository builds from http://127.0.0.1 / localhost (tests, local Git servers).",
        ),
        "no-sharing": (
            {"UpApp": {"sharing": False}},
            "Do not turn on environment links and server share codes.",
        ),
        "build-image": (
            {"UpApp": {"build_image": True}},
            "Build a missing single-user image with scripts/setup.sh without asking.",
        ),
    }

    @validate("base_url")
    def _base_url_slashes(self, proposal: Any) -> str:
        return "/" + str(proposal.value).strip("/") + "/" if str(proposal.value).strip("/") else "/"

    @default("state_dir")
    def _state_dir_default(self) -> str:
        return _default_state_dir()

    @property
    def state(self) -> Path:
        return Path(self.state_dir).expanduser().resolve()

    def preflight(self) -> list[Problem]:
        """Every check; an empty list means go."""
        problems = [
            running_problem(self.state, live_hub_pid(self.state)),
            proxy_problem(shutil.which("configurable-http-proxy")),
        ]
        docker = docker_problem(probe_docker())
        problems.append(docker)
        if docker is None and not image_present(self.image):
            script = SETUP_SCRIPT if SETUP_SCRIPT.exists() else None
            if script is not None and self._may_build_image():
                say(f"fancy-env up: building {self.image} with {script} ...", flush=True)
                subprocess.run(["bash", str(script)], check=False)
            problems.append(image_problem(self.image, image_present(self.image), script))
        if docker is None:
            script = SETUP_SCRIPT if SETUP_SCRIPT.exists() else None
            present = network_present(BUILD_NETWORK)
            problems.append(build_network_problem(BUILD_NETWORK, present, script))
        problems.append(port_problem(self.ip, self.port, port_in_use(self.ip, self.port)))
        return [p for p in problems if p is not None]

    def _may_build_image(self) -> bool:
        """Only our own image can be built by setup.sh; ask unless --build-image said yes."""
        if self.image != SINGLEUSER_IMAGE:
            return False
        if self.build_image:
            return True
        if not sys.stdin.isatty():
            return False
        answer = input(f"The single-user image {self.image} is missing. Build it now? [Y/n] ")
        return answer.strip().lower() in ("", "y", "yes")

    def _registry_credentials(self) -> str:
        """The credentials file for --registry: the one given, else setup.sh's (if it fits)."""
        if self.registry_credentials_file:
            return str(Path(self.registry_credentials_file).expanduser().resolve())
        if not self.registry:
            return ""
        setup_state = os.environ.get("FANCY_ENV_STATE") or (
            "/var/lib/fancy-env" if os.geteuid() == 0 else "~/.local/state/fancy-env"
        )
        return default_registry_credentials(self.registry, Path(setup_state).expanduser())

    def write_config(self) -> HubSettings:
        user_config = Path(self.config_file).expanduser().resolve() if self.config_file else None
        settings = HubSettings(
            state_dir=self.state,
            ip=self.ip,
            port=self.port,
            hub_port=free_port(),
            proxy_api_port=free_port(),
            builder_port=free_port(),
            base_url=self.base_url,
            image=self.image,
            allow_loopback_repos=self.allow_loopback_repos,
            user_config=user_config,
            sharing=self.sharing,
            up_id=up_id_for(self.state),
            profile_list=default_profile_list(self.image, self.allow_loopback_repos),
            registry=self.registry,
            registry_credentials_file=self._registry_credentials(),
        )
        path = self.state / "jupyterhub_config.py"
        path.write_text(render_hub_config(settings))
        return settings

    def start(self) -> None:
        if self.config_file and not Path(self.config_file).expanduser().is_file():
            self._fail(
                [
                    Problem(
                        "config",
                        f"--config {self.config_file} is not a file",
                        "pass the path of an existing jupyterhub_config.py",
                    )
                ]
            )
        problems = self.preflight()
        if problems:
            self._fail(problems)
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings = self.write_config()
        leftovers = remove_containers(settings.up_id)
        if leftovers:
            self.log.warning("removed %d container(s) left by an earlier run", leftovers)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, raise_shutdown)
        self.children = ChildProcesses()
        if not self.children.subreaper:
            self.log.warning("not a child subreaper: orphans of the hub may outlive Ctrl-C")
        hub: subprocess.Popen[bytes] | None = None
        code = 0
        try:
            hub, passwords = self._launch_hub(settings)
            if self._wait_ready(hub):
                self._banner(*passwords)
            code = self._wait_exit(hub)
            say(
                f"fancy-env up: the hub exited with code {code}; see {self._log_path}",
                file=sys.stderr,
            )
            say(self._tail(), file=sys.stderr)
        except Shutdown as why:
            code = 1 if str(why) == START_TIMEOUT else 0
            say(
                f"\nfancy-env up: {why}: stopping the hub, its servers and services ...", flush=True
            )
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            self.stop_everything(hub, settings)
        self.exit(1 if code else 0)

    def _fail(self, problems: list[Problem]) -> None:
        for problem in problems:
            say(problem.render(), file=sys.stderr)
        self.exit(2)

    @property
    def _log_path(self) -> Path:
        return self.state / "jupyterhub.log"

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _launch_hub(self, settings: HubSettings) -> tuple[subprocess.Popen[bytes], list[str]]:
        """Start JupyterHub in its own session (a Ctrl-C reaches only us); new passwords."""
        password, admin_password = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
        env = {
            **os.environ,
            # marks the hub's tree for diagnostics and tests; never used to choose what to stop
            MARKER_ENV: settings.up_id,
            # the hub imports the same fancy_env as this command, installed or not
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
            "FANCY_ENV_UP_PASSWORD": password,
            "FANCY_ENV_UP_ADMIN_PASSWORD": admin_password,
        }
        with self._log_path.open("ab") as log:
            hub = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyterhub",
                    "-f",
                    str(self.state / "jupyterhub_config.py"),
                ],
                cwd=self.state,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return hub, [password, admin_password]

    def _wait_exit(self, hub: subprocess.Popen[bytes]) -> int:
        """The hub's exit code; meanwhile record what runs under us (see ChildProcesses)."""
        while True:
            self.children.record(frozenset({hub.pid}))
            try:
                return hub.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue

    @property
    def url(self) -> str:
        return f"http://{connect_host(self.ip)}:{self.port}{self.base_url}"

    def _wait_ready(self, hub: subprocess.Popen[bytes]) -> bool:
        """True once /hub/health answers; False if the hub exited; Shutdown on timeout."""
        deadline = time.monotonic() + self.start_timeout
        while not self._healthy(self.url):
            self.children.record(frozenset({hub.pid}))
            if hub.poll() is not None:
                return False
            if time.monotonic() > deadline:
                say(
                    f"fancy-env up: the hub did not answer within {self.start_timeout:.0f} s",
                    file=sys.stderr,
                )
                say(self._tail(), file=sys.stderr)
                raise Shutdown(START_TIMEOUT)
            time.sleep(0.3)
        return True

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "hub/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def _banner(self, password: str, admin_password: str) -> None:
        url = self.url
        say(
            f"\nfancy-env up: the hub is ready at {url}\n"
            f"    log in with any user name and the password: {password}\n"
            f"    (user 'admin' logs in with the admin password: {admin_password})\n"
            f"    state and logs: {self.state}  (hub log: {self._log_path})\n"
            "    these passwords are shown once; press Ctrl-C to stop everything\n",
            flush=True,
        )

    def stop_everything(self, hub: subprocess.Popen[bytes] | None, s: HubSettings) -> None:
        """Stop the hub cleanly, then whatever of ours is left: our own descendants only
        (`ChildProcesses`), and the containers labelled with this up's id."""
        if hub is not None and hub.poll() is None:
            self.children.record(frozenset({hub.pid}))  # the proxy and services, while known
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.log.warning("the hub did not stop in %.0f s: killing it", self.stop_timeout)
                # its own process group (start_new_session), while the hub holds that id
                os.killpg(hub.pid, signal.SIGKILL)
                hub.wait()
        removed = remove_containers(s.up_id)
        signalled, killed = self.children.stop()
        ports = {s.port, s.hub_port, s.proxy_api_port, s.builder_port} & listening_ports()
        say(
            f"fancy-env up: stopped ({removed} container(s) removed after the hub's own cleanup, "
            f"{signalled} process(es) of ours left after the hub stopped, {killed} killed"
            + (f", ports still listening: {sorted(ports)}" if ports else "")
            + ")",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fancy-env` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "--version":
        print(__version__)
        return 0
    if command == "build":
        from .builder.cli_build import main_build

        return int(main_build(rest) or 0)
    if command == "gc":
        from .builder.cli_gc import main_gc

        return int(main_gc(rest) or 0)
    if command == "db":
        from .migrate import main_db

        return main_db(rest)
    if command == "up":
        app = UpApp()
        try:
            app.initialize(rest)
            app.start()
        except KeyboardInterrupt:  # Ctrl-C before anything was started (preflight, prompt)
            say("\nfancy-env up: interrupted before the hub started; nothing to stop")
            return 130
        return 0
    print(
        f"fancy-env: unknown command {command!r} (allowed: up, build, gc, db)\n{USAGE}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
