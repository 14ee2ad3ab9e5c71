"""One flush per tick stores the pending log lines of every running build in one write, then
shows them (stored before shown); builds whose record is not stored yet, or whose last
flush is queued, are left to their own journal; a failed write puts the lines back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fancy_env.builder.journal import Journal, LineTicks


class Build:
    def __init__(self, name: str) -> None:
        self.id = name
        self.journal = Journal(name)
        self.unflushed: list[tuple[str, int]] = []
        self.done = False
        self.seq = 0
        self.published = 0

    def emit(self, n: int = 1) -> None:
        for _ in range(n):
            self.seq += 1
            self.unflushed.append((self.id, self.seq))

    def take_unflushed(self) -> list[Any]:
        lines, self.unflushed = self.unflushed, []
        return lines

    def publish(self, seq: int) -> None:
        self.published = max(self.published, seq)


class Writes:
    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.fail = False
        self.seen_published: list[int] = []
        self.builds: list[Build] = []

    async def __call__(self, lines: list[Any]) -> None:
        self.seen_published = [b.published for b in self.builds]
        await asyncio.sleep(0.001)
        if self.fail:
            raise RuntimeError("database down")
        self.calls.append(lines)


async def test_one_write_per_tick_for_every_build_then_shown() -> None:
    writes = Writes()
    ticks = LineTicks(writes, 0.01)
    a, b, c = Build("a"), Build("b"), Build("c")
    writes.builds = [a, b, c]
    for build, n in ((a, 3), (b, 2), (c, 1)):
        build.emit(n)
        ticks.schedule(build)
    c.journal.recorded = False  # its record is not stored yet: its journal takes its lines
    await asyncio.sleep(0.05)
    await ticks.idle()
    assert writes.calls == [[("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]]
    assert writes.seen_published == [0, 0, 0]  # nothing shown before it was stored
    assert (a.published, b.published, c.published) == (3, 2, 0)
    assert c.unflushed == [("c", 1)]


async def test_a_build_whose_last_flush_is_queued_is_left_to_it() -> None:
    writes = Writes()
    ticks = LineTicks(writes, 0.0)
    a = Build("a")
    a.emit(2)
    a.journal.final_queued = True
    ticks.schedule(a)
    await asyncio.sleep(0.01)
    await ticks.idle()
    assert writes.calls == [] and a.unflushed == [("a", 1), ("a", 2)] and not ticks.dirty


async def test_a_failed_write_puts_the_lines_back_in_front() -> None:
    writes = Writes()
    ticks = LineTicks(writes, 0.0)
    a = Build("a")
    a.emit(2)
    writes.fail = True
    with pytest.raises(RuntimeError):
        ticks.dirty[a.id] = a
        await ticks.flush()
    a.emit(1)
    assert a.unflushed == [("a", 1), ("a", 2), ("a", 3)] and a.published == 0
    writes.fail = False
    ticks.schedule(a)
    await asyncio.sleep(0.01)
    await ticks.idle()
    assert writes.calls == [[("a", 1), ("a", 2), ("a", 3)]] and a.published == 3


async def test_writes_of_lines_hold_one_lock_so_ticks_never_overlap() -> None:
    writes = Writes()
    ticks = LineTicks(writes, 0.0)
    a = Build("a")
    async with ticks.lock:  # a build's own journal flush is writing
        a.emit(1)
        ticks.schedule(a)
        await asyncio.sleep(0.01)
        assert writes.calls == []
    await asyncio.sleep(0.01)
    await ticks.idle()
    assert writes.calls == [[("a", 1)]]
