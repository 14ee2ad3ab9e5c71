"""Schema migrations (fancy_env.migrate) on SQLite and PostgreSQL (the conftest runs every test
on both): the revisions match the models, databases made by earlier releases (their own code,
from git) are adopted and upgraded with every row kept, processes starting together on an empty
database all succeed, and `fancy-env db`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.engine import Connection, make_url

from fancy_env import migrate
from fancy_env.builder import credentials
from fancy_env.builder.credentials import CredentialStore
from fancy_env.builder.db import Base as BuildBase
from fancy_env.builder.db import Build, Store
from fancy_env.builder.events import BuildEvent
from fancy_env.cli import main
from fancy_env.sharing import links as L
from fancy_env.sharing.store import Base as LinkBase
from fancy_env.sharing.store import LinkStore
from tests.support import db
from tests.support.builder import ROOT, BuilderProcess
from tests.support.net import wait_for

NOW = 1_800_000_000.25
OLD = 1_700_000_000.5  # `now` in OLD_RELEASE
MODELS = {"builds": [BuildBase.metadata, credentials.CredBase.metadata],
          "links": [LinkBase.metadata]}  # fmt: skip
#: earlier releases whose databases must upgrade: the last before migrations, and an older one
#: (before digest, private and forge_credentials)
RELEASES = {"a093668": "b05_private", "f4c5bf1": "b03_rebuild"}


def _same_empty_default(
    ctx: Any, _insp: Any, _meta: Any, found: Any, _d: Any, rendered: Any
) -> Any:
    """SQLite reflects an empty string default as "''" or "('')", which Alembic reports as a
    change even on a table made by create_all; every other default is compared the usual way
    (None)."""
    found = str(found or "")
    while found.startswith("(") and found.endswith(")"):
        found = found[1:-1]
    return False if found == "''" and rendered in ("", "''") else None


def schema_diff(conn: Connection, schema: str) -> list[Any]:
    """What Alembic's autogenerate sees between the models of `schema` and the database
    (types and server defaults included); only the schema's own tables are looked at."""
    tables = set(migrate.SCHEMAS[schema].tables)
    opts = {
        "compare_type": True,
        "compare_server_default": _same_empty_default,
        "include_name": lambda name, kind, _parent: kind != "table" or name in tables,
    }
    return list(compare_metadata(MigrationContext.configure(conn, opts=opts), MODELS[schema]))


def test_head_matches_the_models(db_url: str) -> None:
    """Both schemas in one database: the revisions make exactly what the models declare."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        for schema in migrate.SCHEMAS:
            migrate.upgrade(conn, schema)
            assert migrate.current(conn, schema) == migrate.head(schema)
            assert schema_diff(conn, schema) == []
    engine.dispose()


def test_a_change_to_the_models_is_seen(db_url: str) -> None:
    """The comparison is not blind: a column the revisions lack shows as a difference."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "links")
        conn.execute(text("ALTER TABLE fancy_env_links DROP COLUMN last_launch"))
        assert [d[0] for d in schema_diff(conn, "links")] == ["add_column"]
    engine.dispose()


def test_adoption_of_columns_added_out_of_order(db_url: str) -> None:
    """A development build's database with `private` but not `digest`: stamped where its
    columns stop matching, then the rest is added (what exists already is kept)."""
    engine = create_engine(db_url)
    BuildBase.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE builds DROP COLUMN digest"))
        conn.execute(text("INSERT INTO builds (id, \"user\", repo, ref, subdir, \"commit\", image,"
                          " status, reason, cache_hit, executor_ref, created, log_truncated,"
                          " rebuild, rebuild_of, private) VALUES ('b1', 'alice', 'r', '', '', '',"
                          " '', 'built', '', FALSE, '', 1.0, FALSE, FALSE, '', TRUE)"))  # fmt: skip
    with engine.connect() as conn:
        assert migrate.adopted_revision(conn, "builds") == "b03_rebuild"
        migrate.upgrade(conn, "builds")
        assert migrate.current(conn, "builds") == "b05_private"
        assert schema_diff(conn, "builds") == []
    got = db.Blocking(lambda: Store.open(db_url)).get("b1")
    assert got is not None and got.private is True and got.digest == ""
    engine.dispose()


def test_a_revision_this_release_does_not_know_is_refused(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        migrate.upgrade(conn, "links")
        conn.execute(text("UPDATE fancy_env_links_version SET version_num = 'l99_future'"))
        conn.commit()
        with pytest.raises(migrate.MigrationError, match="l99_future.*newer release"):
            migrate.upgrade(conn, "links")
    engine.dispose()


# --- databases made by earlier releases, with those releases' own code ---------------------

OLD_RELEASE = """
import json, os, sys
import fancy_env
from fancy_env.builder.db import Build, Store
from fancy_env.builder.events import BuildEvent
from fancy_env.sharing import links as L
from fancy_env.sharing.store import LinkStore
url, tree, key = sys.argv[1], sys.argv[2], sys.argv[3]
assert fancy_env.__file__.startswith(tree), fancy_env.__file__  # the old code, not ours
now = 1_700_000_000.5
store = Store(url)
store.add_build(Build(id="old1", user="alice", repo="https://h/r", ref="main", status="built",
                      commit="c" * 40, image="p/r:c", created=now, started=now + 1,
                      finished=now + 9),
                users=["bob"], lines=[BuildEvent("old1", 1, "fetching", "clone", now)])
store.add_lines(BuildEvent("old1", i, "building", f"step {i}", now + i) for i in range(2, 6))
store.add_build(Build(id="old2", user="bob", repo="https://h/s", status="failed",
                      reason="exit 1", created=now + 20))
store.add_image("p/r:c", "https://h/r", "c" * 40, "old1")
links = LinkStore(url)
links.add(L.Link("lk1", "a" * 64, "alice", L.LinkSpec("small", {"image": "py311"}), now))
links.add(L.Link("lk2", "b" * 64, "bob", L.LinkSpec("repo", repo="https://h/r", ref="main",
                                                      build_id="old1"), now + 1, now + 99))
links.record_launch("lk1", now + 5)
links.update("lk2", revoked_at=now + 7)
made = ["builds", "links"]
try:
    from fancy_env.builder.credentials import CredentialStore
except ImportError:
    pass
else:
    CredentialStore(store.engine, key).put("alice", "https://github.com", "tok-" + "x" * 20, "al")
    made.append("credentials")
print(json.dumps(made))
"""


#: the earlier release still running beside the upgraded database (a rolling upgrade: the old
#: service process is not stopped yet), with its own stores: it reads what the current code
#: wrote and writes a build, its log and a launch (every revision only adds tables, and
#: columns with server defaults, so the old code's INSERTs and SELECTs still fit)
OLD_AFTER_UPGRADE = """
import json, sys
import fancy_env
from fancy_env.builder.db import Build, Store
from fancy_env.builder.events import BuildEvent
from fancy_env.sharing.store import LinkStore
url, tree = sys.argv[1], sys.argv[2]
assert fancy_env.__file__.startswith(tree), fancy_env.__file__
now = 1_700_000_100.5
store = Store(url)
new = store.get("new1")
store.add_build(Build(id="old3", user="dave", repo="https://h/t", ref="main", status="building",
                      commit="e" * 40, image="p/t:e", created=now),
                lines=[BuildEvent("old3", 1, "fetching", "clone", now)])
store.add_lines([BuildEvent("old3", 2, "built", "done", now + 1, "p/t:e")])
store.update("old3", status="built", finished=now + 2)
store.add_image("p/t:e", "https://h/t", "e" * 40, "old3")
links = LinkStore(url)
links.record_launch("lk3", now + 3)
print(json.dumps({"new1": [new.status, new.image], "links": [x.id for x in links.list()],
                  "old1": [e.message for e in store.lines("old1")][-1]}))
"""


def extract(commit: str, dest: Path) -> Path:
    """The `fancy_env` package of `commit`, from git, under `dest`."""
    found = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True)  # fmt: skip
    if found.returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone (a shallow clone?): fetch the history")
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "fancy_env"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table except the version tables, by table."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        found = {t.name: [dict(r._mapping) for r in conn.execute(select(t))]
                 for t in meta.sorted_tables if not t.name.endswith("_version")}  # fmt: skip
    engine.dispose()
    return found


def kept(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> None:
    """Each row of `before` is in `after` with the same values (new columns may be added)."""
    for table, old_rows in before.items():
        new = [repr({k: r[k] for k in old_rows[0]}) for r in after[table]] if old_rows else []
        missing = [row for row in old_rows if repr(row) not in new]
        assert not missing, f"{table}: rows lost or changed: {missing}"


def run_release(commit: str, tmp_path: Path, script: str, *args: str) -> Any:
    """`script` run by the code of `commit` (extracted once under tmp_path); its JSON output."""
    tree = tmp_path / f"release-{commit}"
    if not tree.exists():
        extract(commit, tree)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-c", textwrap.dedent(script), args[0], str(tree), *args[1:]]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def make_old_database(commit: str, tmp_path: Path, url: str) -> list[str]:
    key = str(tmp_path / "credentials.key")
    return list(run_release(commit, tmp_path, OLD_RELEASE, url, key))


async def read_what_the_old_release_wrote_after(url: str) -> None:
    store = await Store.open(url)
    old3 = await store.get("old3")
    assert old3 is not None and (old3.status, old3.finished) == ("built", OLD + 102)
    assert (old3.digest, old3.private, old3.log_truncated) == ("", False, False)
    assert [e.message for e in await store.lines("old3")] == ["clone", "done"]
    assert await store.serving_build("p/t:e") == "old3"
    links = await LinkStore.open(url)
    assert await links.launches("lk3") == 2
    await store.close()
    await links.close()


async def read_and_write(url: str, key: str, made: list[str]) -> None:
    """The current stores read what the old release wrote and add their own rows."""
    store = await Store.open(url)
    old = await store.get("old1")
    assert old is not None and (old.status, old.image, old.finished) == ("built", "p/r:c", OLD + 9)
    added = (old.log_truncated, old.rebuild, old.rebuild_of, old.digest, old.private)
    assert added == (False, False, "", "", False)  # the new columns' defaults
    assert [e.message for e in await store.lines("old1")] == [
        "clone",
        *(f"step {i}" for i in range(2, 6)),
    ]
    assert sorted(await store.users("old1")) == ["alice", "bob"]
    assert await store.serving_build("p/r:c") == "old1"
    await store.add_build(Build(id="new1", user="carol", repo="https://h/r", status="built",
                          image="p/r:c", digest="sha256:" + "d" * 64, private=True, created=NOW),
                    lines=[BuildEvent("new1", 1, "built", "done", NOW, "p/r:c")])  # fmt: skip
    await store.add_lines([BuildEvent("old1", 6, "built", "after the upgrade", NOW)])
    assert await store.private_image("p/r:c") and await store.last_seq("old1") == 6
    links = await LinkStore.open(url)
    revoked = await links.by_id("lk2")
    assert await links.launches("lk1") == 1
    assert revoked is not None and revoked.revoked_at is not None
    await links.add(L.Link("lk3", "c" * 64, "carol", L.LinkSpec("small"), NOW))
    await links.record_launch("lk3", NOW)
    listed = await links.list()
    assert [(x.id, x.launches) for x in listed] == [("lk3", 1), ("lk2", 0), ("lk1", 1)]
    creds = await CredentialStore.open(store.engine, key)
    if "credentials" in made:
        found = await creds.get("alice", "https://github.com")
        assert found is not None and found.token == "tok-" + "x" * 20
    await creds.put("carol", "https://github.com", "tok-" + "y" * 20, "carol")
    await store.close()
    await links.close()


async def start_all(url: str, key: str) -> None:
    """What a service start does to the database: open the three stores."""
    store = await Store.open(url)
    await (await LinkStore.open(url)).close()
    await CredentialStore.open(store.engine, key)
    await store.close()


@pytest.mark.parametrize("commit", list(RELEASES))
def test_upgrade_of_a_database_made_by_an_earlier_release(
    commit: str, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The earlier release's own stores make builds, log lines, images, links (and forge
    credentials where it had them); the current code adopts the database (stamped where its
    columns match), upgrades it with every row kept, reads and writes it; the earlier release,
    still running, goes on reading and writing the upgraded database; a second start runs no
    migration."""
    made = make_old_database(commit, tmp_path, db_url)
    before = rows(db_url)
    assert len(before["log_lines"]) == 5 and len(before["fancy_env_links"]) == 2
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert migrate.current(conn, "builds") is None  # made before migrations
        assert migrate.adopted_revision(conn, "builds") == RELEASES[commit]
        assert migrate.adopted_revision(conn, "links") == "l01_baseline"
    asyncio.run(read_and_write(db_url, str(tmp_path / "credentials.key"), made))
    kept(before, rows(db_url))
    # the earlier release, still running during the upgrade, goes on reading and writing
    seen = run_release(commit, tmp_path, OLD_AFTER_UPGRADE, db_url)
    assert seen == {"new1": ["built", "p/r:c"], "links": ["lk3", "lk2", "lk1"],
                    "old1": "after the upgrade"}  # fmt: skip
    asyncio.run(read_what_the_old_release_wrote_after(db_url))
    with engine.connect() as conn:
        for schema in migrate.SCHEMAS:
            assert migrate.current(conn, schema) == migrate.head(schema)
            assert schema_diff(conn, schema) == []
    import alembic.command

    def no_migration(*args: Any, **kw: Any) -> None:
        raise AssertionError("a second start ran a migration")

    monkeypatch.setattr(alembic.command, "upgrade", no_migration)
    monkeypatch.setattr(alembic.command, "stamp", no_migration)
    second = rows(db_url)
    asyncio.run(start_all(db_url, str(tmp_path / "credentials.key")))
    assert rows(db_url) == second and len(second["builds"]) == 4
    engine.dispose()


# --- processes starting together -------------------------------------------------------------

RACE = """
import asyncio, sys, time
from pathlib import Path
from fancy_env.builder.db import Store
from fancy_env.sharing.store import LinkStore
url, go, launches, me = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def wait(name):
    go.with_name(f"{name}-{me}").touch()
    while not go.with_name(name).exists():
        time.sleep(0.002)
async def main():
    wait("start")
    await (await Store.open(url)).close()  # both schemas upgraded by every process at once
    links = await LinkStore.open(url)
    wait("count")
    for _ in range(launches):
        await links.record_launch("l1", time.time())
    await links.close()
asyncio.run(main())
"""


def run_together(db_url: str, tmp_path: Path, processes: int, launches: int) -> list[str]:
    """Start `processes` Python processes that, once all are ready, start the build and link
    stores on one empty database at the same moment, then (once the test made link l1) count
    `launches` launches each of it; the stderr of those that failed."""
    cmd = [sys.executable, "-c", textwrap.dedent(RACE), db_url, str(tmp_path / "go"), str(launches)]
    procs = [
        subprocess.Popen([*cmd, str(i)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for i in range(processes)
    ]

    def arrived(name: str) -> None:  # every process reached `name`, or one failed
        def done() -> bool:
            return len(list(tmp_path.glob(f"{name}-*"))) == processes or any(
                p.poll() for p in procs
            )

        wait_for(done, timeout=90, what=f"the processes at {name}")

    arrived("start")
    (tmp_path / "start").touch()
    arrived("count")  # every process has upgraded both schemas
    db.Blocking(lambda: LinkStore.open(db_url)).add(
        L.Link("l1", "h" * 64, "alice", L.LinkSpec("small"), NOW, None)
    )
    (tmp_path / "count").touch()
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            errors.append(err[-2000:])
    return errors


def test_processes_starting_together_on_an_empty_database(db_url: str, tmp_path: Path) -> None:
    """Service processes (replicas, or a restart overlapping the old process) start on one
    empty database at the same moment: every start succeeds, the schemas are made once, and
    launches they then count at the same time are all kept."""
    assert run_together(db_url, tmp_path, processes=3, launches=30) == []
    assert db.Blocking(lambda: LinkStore.open(db_url)).launches("l1") == 90
    engine = create_engine(db_url)
    with engine.connect() as conn:
        for schema in migrate.SCHEMAS:
            assert migrate.current(conn, schema) == migrate.head(schema)
            assert schema_diff(conn, schema) == []
    engine.dispose()


def test_db_command(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    if db_url.startswith("sqlite"):  # a mistyped path is not made into an empty database
        assert main(["db", "current", "--url", db_url]) == 1
        assert "no SQLite database at" in capsys.readouterr().err
        assert not Path(make_url(db_url).database or "").exists()
        create_engine(db_url).connect().close()
    assert main(["db", "current", "--url", db_url]) == 0
    assert "builds: no version table" in capsys.readouterr().out
    assert main(["db", "upgrade", "--url", db_url, "--schema", "links"]) == 0
    out = capsys.readouterr().out
    assert "links: l01_baseline (head)" in out and "builds" not in out
    assert main(["db", "upgrade", "--url", db_url]) == 0
    assert "builds: b05_private (head)" in capsys.readouterr().out
    password = make_url(db_url).password
    if password:
        main(["db", "current", "--url", db_url])
        assert str(password) not in capsys.readouterr().out  # never printed


def async_url(url: str) -> str:
    return url.replace("sqlite:///", "sqlite+aiosqlite:///", 1)


async def test_upgrade_through_an_async_connection(db_url: str) -> None:
    """What the asyncio stores do: `AsyncConnection.run_sync(upgrade, schema)`."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(async_url(db_url))
    try:
        for _ in range(2):  # made, then a no-op
            async with engine.connect() as conn:
                for schema in migrate.SCHEMAS:
                    await conn.run_sync(migrate.upgrade, schema)
        async with engine.connect() as conn:
            for schema in migrate.SCHEMAS:
                assert await conn.run_sync(migrate.current, schema) == migrate.head(schema)
                assert await conn.run_sync(schema_diff, schema) == []
    finally:
        await engine.dispose()


def test_the_service_log_names_the_upgrade(builder: BuilderProcess) -> None:
    """A real service start on an empty database: the upgrade shows in its log; a restart
    finds nothing to do."""
    log = builder.log_path.read_text()
    assert "upgrading the builds schema from empty to b05_private" in log
    assert "Running upgrade b04_digest -> b05_private" in log
    builder.stop()
    size = builder.log_path.stat().st_size
    builder.start()
    assert "upgrading" not in builder.log_path.read_text()[size:]
