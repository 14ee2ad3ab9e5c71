"""The one place a configured database URL becomes an asyncio SQLAlchemy engine.

Configured URLs keep their forms; the driver is chosen here:

- `sqlite:////abs/path` (or `sqlite+pysqlite://`, `sqlite+aiosqlite://`) → aiosqlite, with
  `journal_mode=WAL`, `synchronous=NORMAL` and `busy_timeout=5000` set on every connection
  (readers never wait for the writer; a writer waits up to 5 s for another one, in
  aiosqlite's worker thread, not on the event loop);
- `postgresql://…`, `postgresql+psycopg://…` (or `+psycopg_async`) → psycopg 3 in its asyncio
  mode (the `postgres` extra), with a connection pool checked before use (`pool_pre_ping`);
- `postgresql+asyncpg://…` is used as it is (asyncpg is not a dependency).

Anything else is refused with the URL shown without its password (`shown`), which is also the
only form this package ever logs.

The schema step (`prepare_schema`) runs a synchronous function on a connection through
`AsyncConnection.run_sync`, in one transaction that first takes a lock (PostgreSQL: an
advisory lock; SQLite: the write lock), so service processes starting together on one
database take turns instead of failing on each other's CREATE TABLE or ALTER TABLE.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, StaticPool

#: pg_advisory_xact_lock key held while the schema is created (fancy_env's own tables)
SCHEMA_LOCK = 0x66616E6379  # "fancy"

#: connections kept open per engine (one engine per service process and database)
POOL_SIZE = 5
#: further connections opened under load, closed when returned
MAX_OVERFLOW = 10

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
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def locked(step: Callable[[Connection], None]) -> Callable[[Connection], None]:
    """`step(conn)` behind the schema lock (PostgreSQL advisory lock, SQLite write lock)."""

    def run(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        step(conn)

    return run


def create_tables(
    metadata: Any, upgrade: Callable[[Connection], None] | None = None
) -> Callable[[Connection], None]:
    """A schema step: create missing tables of `metadata`, then `upgrade(conn)`."""

    def step(conn: Connection) -> None:
        metadata.create_all(conn)
        if upgrade is not None:
            upgrade(conn)

    return step


async def prepare_schema(engine: AsyncEngine, step: Callable[[Connection], None]) -> None:
    """Run the synchronous schema `step(conn)` in one locked transaction (see module doc)."""
    async with engine.begin() as conn:
        await conn.run_sync(locked(step))
