"""Schema migrations (Alembic) for fancy_env's two schemas, run at every start.

    upgrade(conn, "builds")   # builds, build_users, log_lines, images, forge_credentials
    upgrade(conn, "links")    # fancy_env_links

`upgrade` is a plain function of a synchronous `sqlalchemy.engine.Connection` (an asyncio
store calls it through `AsyncConnection.run_sync(upgrade, "builds")`). In one transaction
that first takes a lock (PostgreSQL: `pg_advisory_xact_lock`; SQLite: `BEGIN IMMEDIATE`, the
write lock), it reads the schema's version table and brings the database to the newest
revision; service processes starting together on one database take turns, and the second
finds nothing to do. On a connection that has not begun, it begins and commits; inside a
transaction the caller began (and that has run nothing yet, for SQLite's lock) the caller
commits.

Each schema is its own Alembic script directory (`fancy_env/migrations/<schema>/`) with its
own version table (`fancy_env_builds_version`, `fancy_env_links_version`), so both live in one
database beside each other and beside JupyterHub's `alembic_version`.

Adoption: a database made by a release before migrations has the tables but no version table.
It is inspected, stamped at the newest revision whose tables and columns it has (`LEGACY`),
then upgraded. The revisions from before migrations add only what is missing, so a database
made by a development build whose columns came in another order is upgraded too.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

# Alembic is imported in the functions that need it: it loads (about 0.3 s) only when a schema
# is upgraded or looked at, not wherever a store module is imported.

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: pg_advisory_xact_lock key held while a schema is upgraded (both schemas share it)
SCHEMA_LOCK = 0x66616E6379  # "fancy"


@dataclass(frozen=True)
class Legacy:
    """A revision from before migrations, and what a database has once it is applied."""

    revision: str
    tables: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()  # (table, column)


@dataclass(frozen=True)
class Schema:
    name: str
    version_table: str
    tables: tuple[str, ...]  # what the schema owns (any of them present: made by a release)
    legacy: tuple[Legacy, ...]  # oldest first

    @property
    def directory(self) -> Path:
        return MIGRATIONS / self.name


SCHEMAS = {
    "builds": Schema(
        "builds",
        "fancy_env_builds_version",
        ("builds", "build_users", "log_lines", "images", "forge_credentials"),
        (
            Legacy("b01_baseline", tables=("builds", "build_users", "log_lines", "images")),
            Legacy("b02_log_truncated", columns=(("builds", "log_truncated"),)),
            Legacy("b03_rebuild", columns=(("builds", "rebuild"), ("builds", "rebuild_of"))),
            Legacy("b04_digest", columns=(("builds", "digest"),)),
            Legacy("b05_private", ("forge_credentials",), (("builds", "private"),)),
        ),
    ),
    "links": Schema(
        "links",
        "fancy_env_links_version",
        ("fancy_env_links",),
        (Legacy("l01_baseline", tables=("fancy_env_links",)),),
    ),
}


class MigrationError(RuntimeError):
    """The database cannot be brought to this release's schema; the message says why."""


def _schema(name: str) -> Schema:
    try:
        return SCHEMAS[name]
    except KeyError:
        raise ValueError(f"schema must be one of {sorted(SCHEMAS)}, not {name!r}") from None


def _config(schema: Schema, conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(schema.directory).replace("%", "%%"))
    cfg.attributes["connection"] = conn
    cfg.attributes["version_table"] = schema.version_table
    return cfg


@functools.cache
def head(schema: str) -> str:
    """The newest revision of `schema` this release has (read once: about 8 ms)."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(_config(_schema(schema))).get_current_head()
    assert found is not None
    return found


def current(conn: Connection, schema: str) -> str | None:
    """The revision the database is at (None: no version table, or an empty one)."""
    spec = _schema(schema)
    if not inspect(conn).has_table(spec.version_table):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {spec.version_table}")).scalars().all()
    if len(rows) > 1:
        raise MigrationError(f"the {spec.version_table} table holds several revisions: {rows}")
    return str(rows[0]) if rows else None


def adopted_revision(conn: Connection, schema: str) -> str | None:
    """For a database without a version table: the newest revision of `schema` whose tables
    and columns it has, all older ones included (None when it has none of them)."""
    spec = _schema(schema)
    insp = inspect(conn)
    present = set(insp.get_table_names())
    if not present & set(spec.tables):
        return None
    columns = {t: {c["name"] for c in insp.get_columns(t)} for t in spec.tables if t in present}
    found = None
    for step in spec.legacy:
        if not set(step.tables) <= present:
            break
        if not all(column in columns.get(table, ()) for table, column in step.columns):
            break
        found = step.revision
    return found


@contextmanager
def _locked(conn: Connection) -> Iterator[None]:
    """A transaction (unless the caller began one) whose first statement takes the lock."""
    began = None if conn.in_transaction() else conn.begin()
    try:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield
    except BaseException:
        if began is not None:
            began.rollback()
        raise
    if began is not None:
        began.commit()


def upgrade(conn: Connection, schema: str) -> None:
    """Bring `schema` ("builds" or "links") in the database of `conn` to this release's newest
    revision, under the schema lock; a no-op when it is there already (see the module doc)."""
    from alembic import command

    spec = _schema(schema)
    target = head(schema)
    with _locked(conn):
        at = current(conn, schema)
        if at == target:
            return
        cfg = _config(spec, conn)
        if at is None:
            at = adopted_revision(conn, schema)
            if at is not None:
                log.info("%s schema made before migrations: adopted at %s", schema, at)
                command.stamp(cfg, at)
        _check_known(spec, at)
        log.info("upgrading the %s schema from %s to %s", schema, at or "empty", target)
        command.upgrade(cfg, "head")


def _check_known(spec: Schema, revision: str | None) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if revision is None:
        return
    try:
        ScriptDirectory.from_config(_config(spec)).get_revision(revision)
    except CommandError:
        raise MigrationError(
            f"the {spec.name} schema is at revision {revision!r}, which this release of "
            "fancy_env does not know: was the database upgraded by a newer release? Run that "
            "release, or restore the backup taken before (docs/howto-upgrade.md)"
        ) from None


def run_env(context: Any) -> None:
    """The body of each script directory's env.py: migrate on the connection `upgrade` put in
    `config.attributes` (offline `--sql` mode is not supported)."""
    attributes = context.config.attributes
    conn = attributes.get("connection")
    if conn is None:
        raise MigrationError("use fancy_env.migrate.upgrade or `fancy-env db upgrade`")
    context.configure(connection=conn, version_table=attributes["version_table"])
    with context.begin_transaction():
        context.run_migrations()


def log_to(logger: logging.Logger) -> None:
    """Send what an upgrade logs (ours and Alembic's `Running upgrade a -> b`) to `logger`'s
    handlers, e.g. a traitlets application's log, which does not propagate to the root."""
    for name in (__name__, "alembic.runtime.migration"):
        child = logging.getLogger(name)
        child.setLevel(logging.INFO)
        for handler in logger.handlers:
            if handler not in child.handlers:
                child.addHandler(handler)


# helpers for the revisions from before migrations (they add only what is missing)


def has_table(op: Any, table: str) -> bool:
    return bool(inspect(op.get_bind()).has_table(table))


def has_column(op: Any, table: str, column: str) -> bool:
    return column in {c["name"] for c in inspect(op.get_bind()).get_columns(table)}


# `fancy-env db upgrade|current`


def main_db(argv: list[str]) -> int:
    """`fancy-env db upgrade|current --url URL [--schema builds|links]`."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    p = argparse.ArgumentParser(
        prog="fancy-env db",
        description="Upgrade the build and links database to this release's schema, or show "
        "which revision it is at (the services upgrade it at start; see docs/howto-upgrade.md).",
    )
    p.add_argument("action", choices=("upgrade", "current"))
    p.add_argument("--url", required=True, help="SQLAlchemy URL (BuilderApp.db_url)")
    p.add_argument("--schema", choices=sorted(SCHEMAS), action="append",
                   help="one schema (default: both)")  # fmt: skip
    args = p.parse_args(argv)
    url = make_url(args.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or ":memory:").is_file():
        why = "the service makes it at its first start; an absolute path is sqlite:////srv/..."
        print(f"fancy-env db: no SQLite database at {url.database!r} ({why})", file=sys.stderr)
        return 1
    engine = create_engine(url)
    try:
        for name in args.schema or sorted(SCHEMAS):
            with engine.connect() as conn:
                if args.action == "upgrade":
                    upgrade(conn, name)
                at = current(conn, name)
            state = "head" if at == head(name) else f"head is {head(name)}"
            print(f"{shown} {name}: {at or 'no version table'} ({state})")
    except (MigrationError, SQLAlchemyError) as e:
        print(f"fancy-env db: {shown}: {e}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0
