"""Databases for the build-service and sharing suites: SQLite files or PostgreSQL.

Every test in tests/builder and tests/sharing runs twice, once per backend: their conftests
use `both_databases()`, a module-scoped fixture parametrized over `sqlite` and `postgresql`
that selects the backend while the module's tests run. Code that starts a service asks
`url_for(state, "builds.sqlite")` for its database URL:

- `sqlite`: the file `<state>/builds.sqlite`, as before;
- `postgresql`: one database per test module and backend (random name, created on first use,
  dropped with `WITH (FORCE)` when the module is done), and in it one schema per
  (state directory, file name), reached through the URL's `search_path`. A test gets an empty
  schema (tmp_path is fresh), a service restarted on the same state finds its data again, and
  two services on one state share one database like they would share one SQLite file.
  (A schema costs milliseconds, CREATE DATABASE about half a second.)

A module-scoped fixture that starts a service must request `db_backend`, so that pytest
starts one per backend instead of keeping the first for both halves.

The PostgreSQL cluster is the one `scripts/setup.sh --test` starts on 127.0.0.1; its URL comes
from $FANCY_ENV_TEST_PG_URL (scripts/test.sh exports it), else from the file setup.sh writes
($FANCY_ENV_STATE/postgres-test.url). Without a cluster the PostgreSQL half fails (CI, and by
default) or, with FANCY_ENV_ALLOW_SKIP=1, is skipped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

BACKENDS = ("sqlite", "postgresql")
PG_URL_ENV = "FANCY_ENV_TEST_PG_URL"


def _state_dir() -> Path:
    if os.environ.get("FANCY_ENV_STATE"):
        return Path(os.environ["FANCY_ENV_STATE"])
    if os.geteuid() == 0:
        return Path("/var/lib/fancy-env")
    return Path.home() / ".local/state/fancy-env"


def pg_admin_url() -> str | None:
    """The test cluster's URL (role fancy_env_test, CREATEDB), or None when there is none."""
    url = os.environ.get(PG_URL_ENV, "").strip()
    if url:
        return url
    try:
        return (_state_dir() / "postgres-test.url").read_text().strip() or None
    except OSError:
        return None


class Databases:
    """The databases one backend hands out for one test module."""

    def __init__(self, backend: str, admin_url: str | None = None) -> None:
        self.backend = backend
        self.admin_url = admin_url
        self.database = f"fe_test_{secrets.token_hex(5)}"
        self._admin: Engine | None = None
        self._schemas: dict[tuple[str, str], str] = {}

    def url_for(self, state: Path, name: str) -> str:
        """The URL of database `name` of the service whose state directory is `state`."""
        if self.backend == "sqlite":
            return f"sqlite:///{state}/{name}"
        key = (str(Path(state).resolve()), name)
        if key not in self._schemas:
            schema = f"s{len(self._schemas)}_{secrets.token_hex(3)}"
            with self._engine().begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            self._schemas[key] = schema
        return self._url(self._schemas[key]).render_as_string(hide_password=False)

    def _url(self, schema: str | None = None) -> URL:
        assert self.admin_url is not None
        url = make_url(self.admin_url).set(database=self.database)
        return url.update_query_dict({"options": f"-csearch_path={schema}"}) if schema else url

    def _engine(self) -> Engine:
        if self._admin is None:
            assert self.admin_url is not None
            server = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            with server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.database}"'))
            server.dispose()
            self._admin = create_engine(self._url(), poolclass=NullPool)
        return self._admin

    def close(self) -> None:
        if self._admin is None:
            return
        self._admin.dispose()
        assert self.admin_url is not None
        server = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        drop = text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        for attempt in range(20):  # FORCE cuts off a service the test left running, but not
            try:  # an autovacuum worker (the superuser's): that one ends within moments
                with server.connect() as conn:
                    conn.execute(drop)
                break
            except ProgrammingError as e:
                if "pg_signal_backend" not in str(e) or attempt == 19:
                    raise
                time.sleep(0.5)
        server.dispose()
        self._admin = None


_current: Databases | None = None


def url_for(state: Path, name: str) -> str:
    """The database URL for a service's `state` directory under the selected backend
    (SQLite outside the two suites)."""
    return (_current or Databases("sqlite")).url_for(state, name)


def current_backend() -> str:
    return _current.backend if _current else "sqlite"


def sync_url(url: str | URL) -> str:
    """An engine's URL (async driver) as the configured form a sync engine opens."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    parsed = parsed.set(drivername="sqlite" if backend == "sqlite" else "postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Blocking:
    """A store's coroutines called from synchronous test code: each call opens the store
    (`opener()`, e.g. `lambda: LinkStore.open(url)`), awaits the method in `asyncio.run`
    and closes the store again (`Blocking(opener).launches(link_id)`)."""

    def __init__(self, opener: Callable[[], Awaitable[Any]]) -> None:
        self._opener = opener

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                store = await self._opener()
                try:
                    return await getattr(store, name)(*args, **kwargs)
                finally:
                    await store.close()

            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(run())
            # a loop runs in this thread (Playwright's sync API): run on a thread of its own
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                return pool.submit(asyncio.run, run()).result()

        return call


def dump(url: str) -> str:
    """Every row of every table, as text (to look for what must not be stored)."""
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            rows = [repr(tuple(r)) for t in meta.sorted_tables for r in conn.execute(select(t))]
        return "\n".join(rows)
    finally:
        engine.dispose()


def _require_pg() -> str:
    url = pg_admin_url()
    if url:
        return url
    why = f"PostgreSQL test cluster (${PG_URL_ENV}): run scripts/setup.sh --test first"
    if os.environ.get("CI") or not os.environ.get("FANCY_ENV_ALLOW_SKIP"):
        pytest.fail(f"{why} is not available")
    pytest.skip(f"{why} (FANCY_ENV_ALLOW_SKIP=1)")


def both_databases(autouse: bool = False) -> Callable[..., Any]:
    """A module-scoped `db_backend` fixture over SQLite and PostgreSQL (see the module doc)."""

    @pytest.fixture(scope="module", params=BACKENDS, autouse=autouse)
    def db_backend(request: pytest.FixtureRequest) -> Iterator[Databases]:
        global _current
        admin = _require_pg() if request.param == "postgresql" else None
        dbs = Databases(request.param, admin)
        previous, _current = _current, dbs
        try:
            yield dbs
        finally:
            _current = previous
            dbs.close()

    return db_backend
