"""The one place a configured database URL becomes an asyncio SQLAlchemy engine.

Configured URLs keep their forms; the driver is chosen here:

- `sqlite:////abs/path` (or `sqlite+pysqlite://`, `sqlite+aiosqlite://`) → aiosqlite, with
  `journal_mode=WAL`, `synchronous=NORMAL` and `busy_timeout=5000` set on every connection
  (readers never wait for the writer; a writer waits up to 5 s for another one, in
  aiosqlite's worker thread, not on the event loop);
- `postgresql://…`, `postgresql+psycopg://…` (or `+psycopg_async`) → psycopg 3 in its asyncio
  mode (the `postgres` extra), with a connection pool checked before use (`pool_pre_ping`)
  and a 10 s `connect_timeout` unless the URL names one;
- `postgresql+asyncpg://…` is used as it is (asyncpg is not a dependency).

Anything else is refused with the URL shown without its password (`shown`), which is also the
only form this package ever logs.

The schemas are made and upgraded by `fancy_env.migrate` (Alembic; synchronous, on a
connection), run through `AsyncConnection.run_sync` (`upgrade_schema`); it takes a lock first
(PostgreSQL: an advisory lock; SQLite: the write lock), so service processes starting
together on one database take turns.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, StaticPool

from . import migrate

#: connections kept open per engine (one engine per service process and database)
POOL_SIZE = 5
#: further connections opened under load, closed when returned
MAX_OVERFLOW = 10
#: seconds a new PostgreSQL connection may take (psycopg's `connect_timeout`; a URL that
#: names `connect_timeout` keeps its own): a database host that drops packets fails a
#: request, a retried write or a stop after this long instead of hanging
CONNECT_TIMEOUT = 10

_SQLITE = {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}
_PSYCOPG = {"postgresql", "postgresql+psycopg", "postgresql+psycopg_async"}


def shown(url: str | URL) -> str:
    """`url` as text without its password (for logs and error messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: say so without echoing it
        return "<unparseable database URL>"


def async_url(url: str | URL) -> URL:
    """The URL with its async driver (see the module doc); ValueError for other databases."""
    parsed = make_url(url)
    if parsed.drivername in _SQLITE:
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername in _PSYCOPG:
        return parsed.set(drivername="postgresql+psycopg_async")
    if parsed.drivername == "postgresql+asyncpg":
        return parsed
    raise ValueError(
        f"database URL {shown(parsed)}: only sqlite:///… and postgresql[+psycopg]://… are "
        "supported (they are opened with aiosqlite and psycopg's asyncio mode)"
    )


def private_sqlite_file(url: str | URL) -> None:
    """A SQLite database file is its owner's only (0600, made now if missing): SQLite gives
    its -wal and -shm files the database file's mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        fd = os.open(parsed.database, os.O_WRONLY | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str | URL) -> AsyncEngine:
    """An asyncio engine on `url` (driver, pragmas and pool as the module doc says)."""
    target = async_url(url)
    kwargs: dict[str, Any] = {}
    if target.get_backend_name() == "sqlite":
        if target.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one in-memory database, not one per connection
        else:
            kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=POOL_SIZE,
                          max_overflow=MAX_OVERFLOW)  # fmt: skip
    else:
        kwargs.update(pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_pre_ping=True,
                      pool_recycle=1800)  # fmt: skip
        psycopg = target.get_driver_name().startswith("psycopg")
        if psycopg and "connect_timeout" not in target.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


async def upgrade_schema(engine: AsyncEngine, schema: str) -> None:
    """Make or upgrade `schema` ("builds" or "links": `fancy_env.migrate`, Alembic) on a
    connection of `engine`: migrate's synchronous `upgrade(conn, schema)` through
    `AsyncConnection.run_sync` (it takes the schema lock and commits)."""
    async with engine.connect() as conn:
        await conn.run_sync(migrate.upgrade, schema)
