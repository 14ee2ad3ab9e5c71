"""Replayed log pages are read once for every watcher asking at the same time (single
flight), and a build's database writes run in the order they were asked for (the journal)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fancy_env.builder.events import BuildEvent
from fancy_env.builder.journal import Journal
from fancy_env.builder.stream import ReplayCache

LINES = 2_000


class SlowLog:
    """A stored log of LINES lines whose reads take a few ms (like a real query)."""

    def __init__(self) -> None:
        self.queries = 0

    async def lines(
        self, build_id: str, after: int, limit: int | None = None, upto: int | None = None
    ) -> list[BuildEvent]:
        self.queries += 1
        await asyncio.sleep(0.005)
        end = min(LINES, after + (limit or LINES), upto if upto is not None else LINES)
        return [BuildEvent(build_id, s, "building", f"line {s}", 1.0, None)
                for s in range(after + 1, end + 1)]  # fmt: skip


async def replay(cache: ReplayCache, log: SlowLog, page: int = 100) -> bytes:
    out, last = [], 0
    while True:
        chunk, last, count = await cache.page("b", last, page, None, log.lines)
        out.append(chunk)
        if count < page:
            return b"".join(out)


async def test_watchers_starting_together_read_each_page_once() -> None:
    cache, log = ReplayCache(), SlowLog()
    got = await asyncio.gather(*(replay(cache, log) for _ in range(50)))
    assert len(set(got)) == 1 and got[0].count(b"\n\n") == LINES
    assert log.queries == LINES // 100 + 1  # 20 full pages and the empty one after them
    assert cache.reads == log.queries


async def test_without_a_cache_a_read_is_still_shared_while_it_runs() -> None:
    cache, log = ReplayCache(max_bytes=0), SlowLog()
    await asyncio.gather(*(replay(cache, log) for _ in range(10)))
    assert log.queries == LINES // 100 + 1 and cache.size == 0


async def test_a_failed_read_fails_its_waiters_and_is_not_kept() -> None:
    cache, calls = ReplayCache(), []

    async def broken(*args: Any, **kwargs: Any) -> list[BuildEvent]:
        calls.append(args)
        await asyncio.sleep(0.001)
        raise OSError("database gone")

    results = await asyncio.gather(
        *(cache.page("b", 0, 10, None, broken) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results) and len(calls) == 1
    with pytest.raises(OSError):
        await cache.page("b", 0, 10, None, broken)  # read again: nothing was kept
    assert len(calls) == 2


async def test_journal_runs_writes_in_order_and_survives_a_failure() -> None:
    journal, done = Journal("b"), []

    def write(n: int, delay: float, fail: bool = False) -> Any:
        async def run() -> None:
            await asyncio.sleep(delay)
            if fail:
                raise RuntimeError("no")
            done.append(n)

        return run

    first = journal.submit(write(1, 0.02))
    failing = journal.submit(write(2, 0.0, fail=True))
    journal.submit(write(3, 0.0))
    await journal.drain()
    assert done == [1, 3] and first.result() is None
    with pytest.raises(RuntimeError):
        failing.result()
