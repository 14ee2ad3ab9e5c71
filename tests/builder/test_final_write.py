"""A build's last write (its last log lines and its result, one transaction) survives a
database that refuses it for a while: the service tries again until it is stored, keeps the
build in memory meanwhile, and shows watchers the end only once it is stored.

The database really refuses: a trigger on the real SQLite file or PostgreSQL schema (both,
tests/builder/conftest.py) aborts every UPDATE that gives a build a final status, and every
INSERT of an image record, while a row is in `fail_results`; deleting the row heals it. The
service is the real BuildService with the fake executor, on a real Git remote on loopback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

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
BEGIN SELECT RAISE(ABORT, 'injected: images refused'); END
"""
PG_FUNCTION = """
CREATE FUNCTION refuse_results() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM fail_results) THEN RAISE EXCEPTION 'injected: results refused'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""
PG_TRIGGER = f"""
CREATE TRIGGER refuse_results BEFORE UPDATE OF status ON builds FOR EACH ROW
WHEN (NEW.status IN {FINAL}) EXECUTE FUNCTION refuse_results();
CREATE TRIGGER refuse_images BEFORE INSERT ON images FOR EACH ROW
EXECUTE FUNCTION refuse_results()
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


async def refuse_results(service: BuildService, on: bool) -> None:
    """Install the refusing trigger (first call), then switch it on or off."""
    async with service.store.engine.begin() as conn:
        tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
        if "fail_results" not in tables:
            await conn.execute(text("CREATE TABLE fail_results (x INTEGER)"))
            sqlite = conn.dialect.name == "sqlite"
            triggers = (SQLITE_TRIGGER if sqlite else PG_TRIGGER).split(";\n")
            for statement in ([] if sqlite else [PG_FUNCTION]) + triggers:
                await conn.execute(text(statement))
        await conn.execute(text("DELETE FROM fail_results"))
        if on:
            await conn.execute(text("INSERT INTO fail_results VALUES (1)"))


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
