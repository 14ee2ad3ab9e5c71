"""The build service as a real subprocess on loopback, for service and integration tests.

svc = BuilderProcess(tmp_path, executor="fake").start()
r = svc.post("alice", repo.url)             # form-ticket authenticated
events = svc.events(r.json()["id"])          # parsed SSE events until the stream ends
svc.kill9(); svc.start()                     # same database, same port
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from fancy_env.builder.sse import SseComment, iter_lines
from fancy_env.tickets import HEADER, mint

from . import db
from .net import free_port, wait_for
from .registry import REGISTRY, builder_config_lines, shared_auth_file

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"test-ticket-secret"


@dataclass
class BuilderProcess:
    state: Path
    executor: str = "fake"
    config: str = ""
    port: int = 0
    prefix: str = "/services/fancy-env/"
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    registry: str = REGISTRY  # image_prefix = <registry>/fancy-env-test/
    registry_auth: Path | None = None  # default: the shared registry's (tests/support/registry)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def log_path(self) -> Path:
        return self.state / "builder.log"

    def write_config(self) -> Path:
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / "fancy_env_builder_config.py"
        path.write_text(
            textwrap.dedent(f"""\
            c.BuilderApp.executor_class = {self.executor!r}
            c.BuilderApp.ticket_secret = {SECRET!r}
            c.BuilderApp.allowed_http_hosts = {{"127.0.0.1"}}
            c.BuilderApp.allowed_private_hosts = {{"127.0.0.1"}}
            c.BuilderApp.db_url = {db.url_for(self.state, "builds.sqlite")!r}
            c.BuilderApp.admin_users = {{"admin"}}
            c.BuilderApp.keepalive_interval = 0.5
            c.BuilderApp.image_prefix = "{self.registry}/fancy-env-test/"
            """)
            + builder_config_lines(self.auth_file())
            + textwrap.dedent(self.config)
        )
        return path

    def auth_file(self) -> Path | None:
        if self.registry_auth is not None:
            return self.registry_auth
        return shared_auth_file() if self.registry == REGISTRY else None

    def start(self, timeout: float = 30) -> BuilderProcess:
        if not self.port:
            self.port = free_port()
        config = self.write_config()
        env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_API_TOKEN"}
        env.update(
            PYTHONPATH=str(ROOT),
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{self.port}",
            JUPYTERHUB_SERVICE_PREFIX=self.prefix,
        )
        env.update(self.env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fancy_env.service", f"--config={config}"],
            cwd=self.state, stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        wait_for(self._up, timeout=timeout, what="build service /health")
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("build service exited:\n" + self.tail())
        return requests.get(self.url + "health", timeout=2).status_code == 200

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def headers(self, user: str) -> dict[str, str]:
        return {HEADER: mint(SECRET, user, 600)}

    def post(self, user: str, repo: str, ref: str = "", **body: Any) -> requests.Response:
        return requests.post(
            self.url + "api/builds", json={"repo": repo, "ref": ref, **body},
            headers=self.headers(user), timeout=60,
        )  # fmt: skip

    def get(
        self, path: str, user: str = "alice", headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        headers = {**self.headers(user), **(headers or {})}
        return requests.get(self.url + path, headers=headers, timeout=30, **kw)

    def delete(self, build_id: str, user: str = "alice") -> requests.Response:
        return requests.delete(
            self.url + f"api/builds/{build_id}", headers=self.headers(user), timeout=30
        )

    def stream(
        self,
        build_id: str,
        user: str = "alice",
        last_event_id: int | None = None,
        timeout: float = 120,
    ) -> Iterator[dict[str, Any]]:
        """Yield SSE messages ({'id', 'data'} or {'comment'}) until the server ends the stream."""
        headers = self.headers(user)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        with requests.get(
            self.url + f"api/builds/{build_id}/events", headers=headers, stream=True,
            timeout=timeout,
        ) as r:  # fmt: skip
            r.raise_for_status()
            yield from parse_sse(r.iter_lines(decode_unicode=True))

    def events(self, build_id: str, **kw: Any) -> list[dict[str, Any]]:
        return [m["data"] for m in self.stream(build_id, **kw) if "data" in m]


def parse_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """`{'id': int, 'data': <JSON>}` per event and `{'comment': text}` per keepalive, parsed by
    the package's own parser (fancy_env/builder/sse.py)."""
    for item in iter_lines(lines):
        if isinstance(item, SseComment):
            yield {"comment": item.text.strip()}
        else:
            message: dict[str, Any] = {"data": item.json()}
            if item.id is not None:
                message["id"] = int(item.id)
            yield message
