"""A real JupyterHub process on loopback, for integration and browser tests.

    hub = HubProcess(tmp_path, config="c.JupyterHub.spawner_class = 'fancy-docker'").start()
    hub.api("POST", "/users/alice/server", json={...})
    hub.stop()

The hub listens on a random 127.0.0.1 port (with configurable-http-proxy), uses
DummyAuthenticator (any password is fine unless `password` is set), and registers a
`test-admin` service whose token `hub.admin_token` has admin rights for the REST API.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .net import free_port, wait_for

BASE_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.JupyterHub.base_url = {base_url!r}
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{state}/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = "{state}/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.load_roles = [
    {{"name": "test-admin", "scopes": ["admin:users", "admin:servers", "admin-ui",
      "read:users", "list:users", "access:servers", "servers", "tokens", "groups",
      "admin:groups", "shares", "read:shares"],
      "services": ["test-admin"]}},
]
c.JupyterHub.services = [{{"name": "test-admin", "api_token": {admin_token!r}}}]
"""


@dataclass
class HubProcess:
    state: Path
    config: str = ""
    base_url: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    hub_port: int = 0
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Public URL including base_url, ending with '/'."""
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def log_path(self) -> Path:
        return self.state / "jupyterhub.log"

    def write_config(self) -> Path:
        self.state.mkdir(parents=True, exist_ok=True)
        self.port, self.hub_port = free_port(), free_port()
        base = BASE_CONFIG.format(
            port=self.port,
            hub_port=self.hub_port,
            proxy_api_port=free_port(),
            base_url=self.base_url,
            state=self.state,
            admin_token=self.admin_token,
        )
        path = self.state / "jupyterhub_config.py"
        path.write_text(base + "\n" + textwrap.dedent(self.config))
        return path

    def start(self, timeout: float = 60) -> HubProcess:
        config_path = self.write_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config_path)],
            cwd=self.state,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        try:
            wait_for(self._up, timeout=timeout, what="JupyterHub to answer /hub/health")
        except TimeoutError:
            self.stop()
            raise RuntimeError("hub did not start:\n" + self.tail()) from None
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("hub exited:\n" + self.tail())
        return requests.get(self.url + "hub/health", timeout=2).status_code == 200

    def run_to_exit(self, timeout: float = 60) -> tuple[int, str]:
        """Start the hub expecting it to exit (e.g. on a bad config); return (code, log)."""
        config_path = self.write_config()
        out = subprocess.run(
            [sys.executable, "-m", "jupyterhub", "-f", str(config_path)],
            cwd=self.state,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env},
        )
        return out.returncode, out.stdout + out.stderr

    def tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return requests.request(
            method,
            self.url + "hub/api" + path,
            headers=headers,
            timeout=kw.pop("timeout", 30),
            **kw,
        )

    def stop_server(self, user: str, server: str = "", timeout: float = 120) -> None:
        """Stop a server and wait until the hub has finished stopping it.

        The hub answers a DELETE with 202 while the stop is still pending; a spawn page
        opened then says "Your server is stopping" instead of showing the form.
        """
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        r = self.api("DELETE", path, json={"remove": bool(server)}, timeout=timeout)
        assert r.status_code in (202, 204), f"stopping {user}/{server}: {r.status_code} {r.text}"

        def stopped() -> bool:
            model = self.api("GET", f"/users/{user}").json()
            return server not in model.get("servers", {})

        wait_for(stopped, timeout=timeout, what=f"{user}'s server {server!r} to stop")

    def user_token(self, name: str) -> str:
        """Create the user if needed and return an API token for them."""
        self.api("POST", f"/users/{name}")
        r = self.api("POST", f"/users/{name}/tokens", json={"note": "test", "expires_in": 3600})
        r.raise_for_status()
        return str(r.json()["token"])

    def login(self, name: str, password: str = "x") -> requests.Session:
        """A browser-like session logged in through the login form."""
        s = requests.Session()
        s.get(self.url + "hub/login", timeout=10)
        xsrf = s.cookies.get("_xsrf", "")
        r = s.post(
            self.url + "hub/login",
            data={"username": name, "password": password, "_xsrf": xsrf},
            timeout=30,
        )
        r.raise_for_status()
        return s
