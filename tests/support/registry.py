"""The registry in tests: the shared one scripts/setup.sh runs, and private ones a test starts.

The shared registry (`$FANCY_ENV_REGISTRY`, default 127.0.0.1:5000) takes pushes only with the
credentials setup.sh wrote to `$FANCY_ENV_STATE/registry-auth.json` (a Docker config JSON);
`$FANCY_ENV_REGISTRY_AUTH` names another file. `shared_auth_file()` finds it (None for a
registry without auth), `registry_get()` asks the registry with them.

`RegistryProcess(tmp_path).start()` runs a private Debian `docker-registry` on a free loopback
port with htpasswd auth (its own user, password, data directory), stopped by its PID.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .net import free_port, wait_for

REGISTRY = os.environ.get("FANCY_ENV_REGISTRY", "127.0.0.1:5000")
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def setup_state_dir() -> Path:
    """The state directory of scripts/setup.sh (same defaults as the script)."""
    if os.environ.get("FANCY_ENV_STATE"):
        return Path(os.environ["FANCY_ENV_STATE"])
    if os.geteuid() == 0:
        return Path("/var/lib/fancy-env")
    return Path.home() / ".local/state/fancy-env"


def shared_auth_file() -> Path | None:
    """The credentials of the shared registry, or None when it runs without auth."""
    named = os.environ.get("FANCY_ENV_REGISTRY_AUTH")
    if named:
        return Path(named)
    path = setup_state_dir() / "registry-auth.json"
    return path if path.is_file() else None


def read_auth(path: Path, registry: str = REGISTRY) -> tuple[str, str]:
    """(user, password) for `registry` from a Docker config JSON."""
    entry = json.loads(path.read_text())["auths"][registry]
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, password


def write_auth(path: Path, registry: str, user: str, password: str) -> Path:
    """A Docker config JSON (mode 0600) for one registry."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"auths": {registry: {"auth": auth}}}, f)
    return path


def shared_basic() -> tuple[str, str] | None:
    path = shared_auth_file()
    return read_auth(path) if path is not None else None


def builder_config_lines(auth_file: Path | None) -> str:
    """Lines for a fancy_env_builder_config.py that give the service the credentials."""
    if auth_file is None:
        return ""
    return f"c.BuilderApp.registry_credentials_file = {str(auth_file)!r}\n"


def image_path(image: str) -> tuple[str, str]:
    """`host:port/a/b:tag` -> (`a/b`, `tag`)."""
    name, tag = image.split("/", 1)[1].rsplit(":", 1)
    return name, tag


def registry_get(
    path: str,
    registry: str = REGISTRY,
    auth: tuple[str, str] | None = None,
    method: str = "GET",
    **kw: Any,
) -> requests.Response:
    """A request to the registry API; the shared registry's credentials unless `auth` given."""
    if auth is None and registry == REGISTRY:
        auth = shared_basic()
    return requests.request(
        method, f"http://{registry}{path}", auth=auth, timeout=10, **kw
    )  # fmt: skip


def registry_has(image: str, auth: tuple[str, str] | None = None) -> bool:
    """Does the registry of `image` hold its manifest?"""
    registry = image.split("/", 1)[0]
    name, tag = image_path(image)
    r = registry_get(
        f"/v2/{name}/manifests/{tag}", registry, auth, "HEAD", headers={"Accept": MANIFEST_V2}
    )
    return r.status_code == 200


@dataclass
class RegistryProcess:
    """A private docker-registry with htpasswd auth on a free 127.0.0.1 port."""

    state: Path
    user: str = "fancy-env-test"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    extra_config: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def auth_file(self) -> Path:
        return self.state / "registry-auth.json"

    def auth_config(self) -> str:
        htpasswd = self.state / "htpasswd"
        subprocess.run(
            ["htpasswd", "-c", "-i", "-B", "-C", "6", str(htpasswd), self.user],
            input=self.password.encode(), check=True, capture_output=True,
        )  # fmt: skip
        return f"auth:\n  htpasswd: {{realm: test-registry, path: {htpasswd}}}\n"

    def start(self) -> RegistryProcess:
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.port = self.port or free_port()
        config = self.state / "registry.yml"
        auth = self.extra_config or self.auth_config()
        config.write_text(
            "version: 0.1\nlog: {level: info}\n"
            f"storage:\n  filesystem: {{rootdirectory: {self.state / 'data'}}}\n"
            f"  delete: {{enabled: true}}\n{auth}http:\n  addr: {self.addr}\n"
        )
        write_auth(self.auth_file, self.addr, self.user, self.password)
        log = (self.state / "registry.log").open("ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._up, timeout=20, what=f"docker-registry on {self.addr}")
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("docker-registry exited:\n" + self.log())
        try:
            return requests.get(f"http://{self.addr}/v2/", timeout=2).status_code in (200, 401)
        except requests.ConnectionError:
            return False

    def log(self) -> str:
        return (self.state / "registry.log").read_text(errors="replace")

    def get(self, path: str, auth: tuple[str, str] | None = None, **kw: Any) -> requests.Response:
        return registry_get(path, self.addr, auth, **kw)

    def has(self, image: str) -> bool:
        return registry_has(image, (self.user, self.password))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
