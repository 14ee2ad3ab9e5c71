"""A build's last write (its last log lines and its result, one transaction) survives a
database that refuses it for a while: the service tries again until it is stored, keeps the
build in memory meanwhile, and shows watchers the end only once it is stored. It carries the
build's start (and truncation) again, so a refused earlier write of those is not lost.

The database really refuses: a trigger on the real SQLite file or PostgreSQL schema (both,
tests/builder/conftest.py) aborts every UPDATE that gives a build a final status, and every
INSERT of an image record, while a row is in `fail_results`; another aborts every other
UPDATE of a build's status or start while a row is in `fail_progress`. Deleting the row
heals it. The
service is the real BuildService with the fake executor, on a real Git remote on loopback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fancy_env.builder import journal
from fancy_env.builder.db import Store
from fancy_env.builder.executors.fake import FakeExecutor
from fancy_env.builder.registry import TableChecker
from fancy_env.builder.service import INTERRUPTED, BuildService, ServiceConfig
from fancy_env.repos import RepoPolicy
from tests.support import db
from tests.support.gitserver import GitServer

POLICY = RepoPolicy(
    allowed_http_hosts=frozenset({"127.0.0.1"}), allowed_private_hosts=frozenset({"127.0.0.1"})
)
FINAL = "('built', 'failed', 'cancelled')"
SQLITE_TRIGGER = f"""
CREATE TRIGGER refuse_results BEFORE UPDATE OF status ON builds
WHEN NEW.status IN {FINAL} AND (SELECT count(*) FROM fail_results) > 0
BEGIN SELECT RAISE(ABORT, 'injected: results refused'); END;
CREATE TRIGGER refuse_images BEFORE INSERT ON images
WHEN (SELECT count(*) FROM fail_results) > 0
BEGIN SELECT RAISE(ABORT, 'injected: images refused'); END;
CREATE TRIGGER refuse_progress BEFORE UPDATE OF status, started ON builds
WHEN NEW.status NOT IN {FINAL} AND (SELECT count(*) FROM fail_progress) > 0
BEGIN SELECT RAISE(ABORT, 'injected: progress refused'); END
"""
PG_FUNCTIONS = [
    """
CREATE FUNCTION refuse_results() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM fail_results) THEN RAISE EXCEPTION 'injected: results refused'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
""",
    """
CREATE FUNCTION refuse_progress() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM fail_progress) THEN RAISE EXCEPTION 'injected: progress refused';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
""",
]  # each one statement (their bodies hold semicolons)
PG_TRIGGER = f"""
CREATE TRIGGER refuse_results BEFORE UPDATE OF status ON builds FOR EACH ROW
WHEN (NEW.status IN {FINAL}) EXECUTE FUNCTION refuse_results();
CREATE TRIGGER refuse_images BEFORE INSERT ON images FOR EACH ROW
EXECUTE FUNCTION refuse_results();
CREATE TRIGGER refuse_progress BEFORE UPDATE OF status, started ON builds FOR EACH ROW
WHEN (NEW.status NOT IN {FINAL}) EXECUTE FUNCTION refuse_progress()
"""


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory, db_backend: object) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("forge")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "RETRY_DELAYS", (0.05, 0.1, 0.2))


async def open_service(state: Path) -> BuildService:
    store = await Store.open(db.url_for(state, "builds.sqlite"))
    config = ServiceConfig(image_prefix="127.0.0.1:5000/fancy-env-test/", push=False,
                           flush_interval=0.01)  # fmt: skip
    executor = FakeExecutor(line_delay=0.01, lines_per_phase=20)
    service = BuildService(store, executor, TableChecker(store), POLICY, config,  # type: ignore[arg-type]
                           logging.getLogger("test"))  # fmt: skip
    await service.start()
    return service


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[BuildService]:
    svc = await open_service(tmp_path)
    await refuse_results(svc, True)
    yield svc
    await svc.stop()
    await svc.store.close()


async def refuse_results(service: BuildService, on: bool, table: str = "fail_results") -> None:
    """Install the refusing triggers (first call), then switch those of `table` on or off."""
    async with service.store.engine.begin() as conn:
        tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
        if "fail_results" not in tables:
            for name in ("fail_results", "fail_progress"):
                await conn.execute(text(f"CREATE TABLE {name} (x INTEGER)"))
            sqlite = conn.dialect.name == "sqlite"
            triggers = (SQLITE_TRIGGER if sqlite else PG_TRIGGER).split(";\n")
            for statement in ([] if sqlite else PG_FUNCTIONS) + triggers:
                await conn.execute(text(statement))
        await conn.execute(text(f"DELETE FROM {table}"))
        if on:
            await conn.execute(text(f"INSERT INTO {table} VALUES (1)"))


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_result_refused_for_a_while_is_stored_then_shown(
    service: BuildService, forge: GitServer, caplog: pytest.LogCaptureFixture
) -> None:
    repo = forge.create("refused-result")
    build = await service.request("alice", repo.url)
    active = service.active[build.id]
    await until(lambda: active.done)  # the terminal event is emitted; its write is refused
    await until(lambda: caplog.text.count("injected: ") >= 3)  # its image, then its result
    stored = await service.store.get(build.id)
    assert stored is not None and stored.status != "built"
    assert service.active.get(build.id) is active  # kept in memory, lines and result
    assert active.published < active.seq  # watchers have not been shown the end
    assert "trying again in" in caplog.text

    await refuse_results(service, False)
    await until(lambda: build.id not in service.active)
    stored = await service.store.get(build.id)
    assert stored is not None and stored.status == "built" and stored.finished
    lines = await service.store.lines(build.id)
    assert [e.seq for e in lines] == list(range(1, active.seq + 1))  # nothing lost
    assert lines[-1].phase == "built"
    assert active.published == active.seq
    image = await service.store.image(build.image)  # the cache entry too (refused as well)
    assert image is not None and image.build_id == build.id


async def test_stop_gives_up_and_the_next_start_marks_it_interrupted(
    service: BuildService, forge: GitServer, tmp_path: Path
) -> None:
    repo = forge.create("refused-at-stop")
    build = await service.request("alice", repo.url)
    await until(lambda: service.active[build.id].done)
    await asyncio.sleep(0.3)  # a few refused tries
    started = asyncio.get_running_loop().time()
    await service.stop()  # does not wait for a database that still refuses
    assert asyncio.get_running_loop().time() - started < 5
    await refuse_results(service, False)
    await service.store.close()

    again = await open_service(tmp_path)
    try:
        await until(lambda: build.id not in again.active)
        stored = await again.store.get(build.id)
        assert stored is not None and stored.status == "failed"
        assert stored.reason == INTERRUPTED
    finally:
        await again.stop()
        await again.store.close()
    # the fixture's own stop and close run again on the first service: both are harmless


async def test_start_refused_is_stored_with_the_result(
    service: BuildService, forge: GitServer, caplog: pytest.LogCaptureFixture
) -> None:
    await refuse_results(service, False)
    await refuse_results(service, True, "fail_progress")
    repo = forge.create("refused-progress")
    build = await service.request("alice", repo.url)  # the record itself is an INSERT
    active = service.active[build.id]
    await until(lambda: active.started is not None and "injected: progress" in caplog.text)
    await until(lambda: build.id not in service.active)  # the result is not refused
    stored = await service.store.get(build.id)
    assert stored is not None and stored.status == "built"
    assert stored.started == active.started_at  # refused at the start, stored at the end
    assert stored.started is not None and stored.started <= stored.finished


async def test_a_build_that_ends_during_its_first_flush_is_shown_ended_with_its_result(
    service: BuildService, forge: GitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's first flush waits for the log lock; the (fast) build ends meanwhile.
    Its terminal line must reach the database with the result, never alone (a watcher saw
    'built' while the record said 'pushing': test_retention caught it in CI)."""
    await refuse_results(service, False)
    writes: list[tuple[list[str], dict[str, object]]] = []
    add_lines = service.store.add_lines

    async def recorded(events: Any, build_id: str = "", **values: Any) -> None:
        events = list(events)
        writes.append(([e.phase for e in events], values))
        await add_lines(events, build_id, **values)

    monkeypatch.setattr(service.store, "add_lines", recorded)
    await service.ticks.lock.acquire()  # as a tick storing other builds' lines would hold it
    request = asyncio.create_task(service.request("alice", forge.create("quick").url))
    await until(lambda: bool(service.active) and next(iter(service.active.values())).done)
    active = next(iter(service.active.values()))
    service.ticks.lock.release()
    build = await request
    await until(lambda: build.id not in service.active)
    ended = [values for phases, values in writes if "built" in phases]
    assert ended and all(values.get("status") == "built" for values in ended), writes
    stored = await service.store.get(build.id)
    assert stored is not None and stored.status == "built"
    assert [e.seq for e in await service.store.lines(build.id)] == list(range(1, active.seq + 1))
