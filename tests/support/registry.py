"""The registry in tests: the shared one scripts/setup.sh runs, and private ones a test starts.

The shared registry (`$FANCY_ENV_REGISTRY`, default 127.0.0.1:5000) takes pushes only with the
credentials setup.sh wrote to `$FANCY_ENV_STATE/registry-auth.json` (a Docker config JSON);
`$FANCY_ENV_REGISTRY_AUTH` names another file. `shared_auth_file()` finds it (None for a
registry without auth), `registry_get()` asks the registry with them.

`RegistryProcess(tmp_path).start()` runs a private Debian `docker-registry` on a free loopback
port with htpasswd auth (its own user, password, data directory), stopped by its PID.
`TokenRegistry(tmp_path).start()` runs one in token-auth mode (`auth.token`): a certificate
the test makes, and tests/support/token_issuer.py on another loopback port as its realm.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import subprocess
import sys
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


def make_signing_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed RSA certificate and its key (PEM) for signing registry tokens."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fancy-env test token issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_path, cert_path = directory / "token.key", directory / "token.crt"
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class TokenRegistry(RegistryProcess):
    """docker-registry in token-auth mode with a token issuer the test runs on 127.0.0.1."""

    service: str = "fancy-env-test-registry"
    issuer: str = "fancy-env-test-issuer"
    expires_in: int = 300
    issuer_port: int = 0
    issuer_proc: subprocess.Popen[bytes] | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.issuer_port}/token"

    @property
    def issuer_log(self) -> Path:
        return self.state / "issuer-requests.log"

    def token_requests(self) -> list[str]:
        try:
            return self.issuer_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def auth_config(self) -> str:
        key, cert = make_signing_cert(self.state)
        password_file = self.state / "issuer-password"
        password_file.write_text(self.password)
        password_file.chmod(0o600)
        self.issuer_port = self.issuer_port or free_port()
        root = Path(__file__).resolve().parents[2]
        log = (self.state / "issuer.log").open("ab")
        self.issuer_proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.token_issuer", "--port", str(self.issuer_port),
             "--key", str(key), "--cert", str(cert), "--issuer", self.issuer,
             "--service", self.service, "--user", self.user,
             "--password-file", str(password_file), "--log", str(self.issuer_log),
             "--expires-in", str(self.expires_in)],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._issuer_up, timeout=20, what="token issuer")
        return (
            f"auth:\n  token:\n    realm: {self.realm}\n    service: {self.service}\n"
            f"    issuer: {self.issuer}\n    rootcertbundle: {cert}\n"
        )

    def _issuer_up(self) -> bool:
        if self.issuer_proc is not None and self.issuer_proc.poll() is not None:
            raise RuntimeError("token issuer exited")
        try:
            requests.get(self.realm, timeout=2)
        except requests.ConnectionError:
            return False
        self.issuer_log.unlink(missing_ok=True)
        return True

    def token(self, scope: str) -> str:
        r = requests.get(self.realm, params={"service": self.service, "scope": scope},
                         auth=(self.user, self.password), timeout=10)  # fmt: skip
        r.raise_for_status()
        return str(r.json()["token"])

    def stop(self) -> None:
        super().stop()
        if self.issuer_proc is not None and self.issuer_proc.poll() is None:
            self.issuer_proc.terminate()
            self.issuer_proc.wait(timeout=15)
        self.issuer_proc = None
