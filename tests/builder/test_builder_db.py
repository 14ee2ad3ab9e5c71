"""The build store on each database (the conftest runs every test on SQLite and on
PostgreSQL): column types and lengths, NUL bytes in logs. Processes starting together on one
database: tests/builder/test_migrations.py."""

from __future__ import annotations

from fancy_env.builder.db import Build, Store
from fancy_env.builder.events import BuildEvent
from fancy_env.repos import MAX_REF_LENGTH, MAX_REPO_LENGTH, MAX_SUBDIR_LENGTH

NOW = 1_800_000_000.123456


def build(build_id: str, **kw: object) -> Build:
    values: dict[str, object] = {"user": "alice", "repo": "https://h/r", "status": "queued"}
    return Build(id=build_id, created=NOW, **{**values, **kw})


async def test_types_and_longest_allowed_values(db_url: str) -> None:
    store = await Store.open(db_url)
    repo = "https://h/" + "r" * (MAX_REPO_LENGTH - 10)
    ref, subdir = "b" * MAX_REF_LENGTH, "s" * MAX_SUBDIR_LENGTH
    await store.add_build(build("a" * 32, repo=repo, ref=ref, subdir=subdir, commit="c" * 64))
    await store.update(
        "a" * 32, status="built", cache_hit=True, started=NOW + 0.5, finished=NOW + 2
    )
    got = await store.get("a" * 32)
    assert got is not None and (got.repo, got.ref, got.subdir) == (repo, ref, subdir)
    assert got.cache_hit is True and got.status == "built"
    assert (got.created, got.started, got.finished) == (NOW, NOW + 0.5, NOW + 2)  # double
    assert list(await store.active()) == []
    assert [b.id for b in await store.history(user="alice")] == ["a" * 32]
    assert await store.last_seq("a" * 32) == 0 and await store.last_seq("nope") == 0
    await store.close()


async def test_log_lines_with_nul_bytes_are_kept(db_url: str) -> None:
    """A build's output may hold NUL bytes; PostgreSQL text refuses them, so the store writes
    U+FFFD instead (on both databases) rather than losing the log or the build."""
    store = await Store.open(db_url)
    first = BuildEvent("b1", 1, "fetching", "clone\x00d", NOW, None)
    await store.add_build(build("b1"), lines=[first])
    await store.add_lines(BuildEvent("b1", i, "building", f"line {i}\x00", NOW + i, None)
                          for i in range(2, 6))  # fmt: skip
    await store.update("b1", status="failed", reason="exit 1: \x00oops")
    lines = await store.lines("b1", after=1)
    assert [e.seq for e in lines] == [2, 3, 4, 5] and await store.last_seq("b1") == 5
    assert (await store.lines("b1"))[0].message == "clone\ufffdd"
    assert lines[-1].message == "line 5\ufffd"
    got = await store.get("b1")
    assert got is not None and got.reason == "exit 1: \ufffdoops"
    pages = [[e.seq for e in page] async for page in store.pages("b1", after=0, page=2)]
    assert pages == [[1, 2], [3, 4], [5]]
    await store.close()


async def test_log_flush_with_the_result_is_one_transaction(db_url: str) -> None:
    """The last lines of a build and its result are stored together (or not at all)."""
    store = await Store.open(db_url)
    await store.add_build(build("b2"))
    last = BuildEvent("b2", 1, "built", "Built x", NOW, "x")
    await store.add_lines([last], "b2", status="built", reason="", finished=NOW + 1)
    await store.add_lines([], "b2", digest="sha256:" + "0" * 64)  # values alone
    got = await store.get("b2")
    assert got is not None and (got.status, got.finished) == ("built", NOW + 1)
    assert got.digest == "sha256:" + "0" * 64 and await store.last_seq("b2") == 1
    await store.close()
