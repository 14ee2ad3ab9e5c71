"""Every refused repository input of issue 3 item 2, answered 400 with its reason over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fancy_env.repos import classify_address
from tests.support.builder import BuilderProcess
from tests.support.db import Databases
from tests.support.repo_cases import ALLOW, DENY, REFUSED, REFUSED_BY_RESOLUTION

STRICT = f"""
c.BuilderApp.allowed_private_hosts = set()
c.BuilderApp.allowed_http_hosts = {{"127.0.0.1"}}
c.BuilderApp.allowed_repos = {list(ALLOW)!r}
c.BuilderApp.denied_repos = {list(DENY)!r}
"""


@pytest.fixture(scope="module")
def strict(
    tmp_path_factory: pytest.TempPathFactory, db_backend: Databases
) -> Iterator[BuilderProcess]:  # db_backend: one service per database
    svc = BuilderProcess(Path(tmp_path_factory.mktemp("strict")), config=STRICT)
    svc.start()
    yield svc
    svc.stop()


@pytest.mark.parametrize(("repo", "ref", "subdir", "field", "reason"), REFUSED)
def test_refused_over_http(
    strict: BuilderProcess, repo: str, ref: str, subdir: str, field: str, reason: str
) -> None:
    r = strict.post("alice", repo, ref, subdir=subdir)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["field"] == field
    assert reason in body["message"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize(("repo", "kind"), REFUSED_BY_RESOLUTION)
def test_refused_after_resolution(strict: BuilderProcess, repo: str, kind: str) -> None:
    r = strict.post("alice", repo)
    assert r.status_code == 400, r.text
    assert f"resolves to a {kind} address" in r.json()["message"]


def test_machine_hostname_is_refused(strict: BuilderProcess) -> None:
    name = socket.gethostname()
    addresses = {i[4][0] for i in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
    if not any(classify_address(str(a)) for a in addresses):
        pytest.skip(f"{name} resolves to public addresses here")
    svc = BuilderProcess(
        strict.state.parent / "hostname", config="c.BuilderApp.allowed_private_hosts = set()\n"
    )
    svc.start()
    try:
        r = svc.post("alice", f"https://{name}/a/b")
    finally:
        svc.stop()
    assert r.status_code == 400
    assert "resolves to a" in r.json()["message"]


@pytest.mark.parametrize(
    "body", [["repo"], {"repo": 5}, {"repo": "o/r", "ref": ["x"]}, {"repo": "o/r", "subdir": 1}]
)
def test_wrong_types(strict: BuilderProcess, body: object) -> None:
    import requests

    r = requests.post(strict.url + "api/builds", json=body, headers=strict.headers("a"), timeout=5)
    assert r.status_code == 400, r.text
