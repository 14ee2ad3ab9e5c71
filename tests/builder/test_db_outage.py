"""When the service's database does not answer, requests get a 503 with `Retry-After` and a
message saying so (never a 500), the log names the driver's cause (no SQL, no parameters),
and the service answers normally again once the database is back, without a restart. A
spawner's launch confirmation shows the user the service's message with the 503.

The outage is real, made from outside the service process (a real subprocess with the fake
executor): on PostgreSQL the test's database stops accepting connections and the service's
are cut off (`ALLOW_CONNECTIONS false`, `pg_terminate_backend`); on SQLite another process
holds the file's write lock (`BEGIN EXCLUSIVE`, as a backup tool might) past the service's
5 s busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fancy_env.buildref import BuildRefError, HTTPBuildConfirmer
from tests.support.builder import BuilderProcess
from tests.support.db import Databases
from tests.support.gitserver import GitServer

TOKEN = "outage-test-service-token"


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[BuilderProcess]:
    """The service as a real subprocess, with a service token (a spawner's confirmations)."""
    svc = BuilderProcess(tmp_path / "builder", executor="fake",
                         env={"JUPYTERHUB_API_TOKEN": TOKEN})  # fmt: skip
    svc.start()
    yield svc
    svc.stop()


@contextmanager
def database_down(dbs: Databases, svc: BuilderProcess) -> Iterator[None]:
    if dbs.backend == "sqlite":
        lock = sqlite3.connect(svc.state / "builds.sqlite", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    assert dbs.admin_url is not None
    server = create_engine(dbs.admin_url, isolation_level="AUTOCOMMIT")
    name = dbs.database
    with server.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        others = "WHERE datname = :d AND pid <> pg_backend_pid()"
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity {others}"),
                     {"d": name})  # fmt: skip
    try:
        yield
    finally:
        with server.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        server.dispose()


def test_a_database_outage_is_a_503_then_the_service_recovers(
    builder: BuilderProcess, git_server: GitServer, db_backend: Databases
) -> None:
    repo = git_server.create("outage")
    first = builder.post("alice", repo.url)
    assert first.status_code == 202, first.text
    assert builder.events(first.json()["id"])[-1]["phase"] == "built"
    other = git_server.create("outage-two")

    with database_down(db_backend, builder):
        # a new build needs its record stored; the history is read (PostgreSQL refuses both)
        calls = [lambda: builder.post("bob", other.url)]
        if db_backend.backend == "postgresql":
            calls.append(lambda: builder.get("api/builds", user="alice"))
        for call in calls:
            r = call()
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "30"
            body = r.json()
            assert body["status"] == 503
            assert "database is not answering" in body["message"]
            assert "Traceback" not in r.text and "SQL" not in r.text
        assert builder.get("health").status_code == 200  # health needs no database
        if db_backend.backend == "postgresql":  # a launch reads the record
            confirmer = HTTPBuildConfirmer(builder.url, TOKEN)
            with pytest.raises(BuildRefError) as refused:
                asyncio.run(confirmer.confirm(first.json()["id"], "alice"))
            assert refused.value.status == 503
            assert "database is not answering" in refused.value.reason

    log = builder.log_path.read_text(errors="replace")
    assert "-> 503: the database is not answering: OperationalError" in log
    assert ("database is locked" in log) or ("not currently accepting connections" in log)
    # back: reads and new builds work again, no restart
    assert builder.get("api/builds", user="alice").status_code == 200
    again = builder.post("carol", git_server.create("after-outage").url)
    assert again.status_code == 202, again.text
    assert builder.events(again.json()["id"], user="carol")[-1]["phase"] == "built"
