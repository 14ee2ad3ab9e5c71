"""The database writes of one build, in the order they were asked for, off their callers.

The build service changes a build's state synchronously (phase changes come from `emit`,
a slot from the queue's callback, a cancel from the watchdog), so that no await can come
between a check and what follows from it. What those changes store goes into the build's
`Journal`: each write is a task that starts once the previous one ended, so the record is
inserted before its first update, and log batches are stored in seq order.

A flush takes its lines when it runs, not when it was asked for, and at most one flush waits
at a time: a build emitting 1,000 lines in a burst is one awaited batched INSERT.

Log lines of running builds are stored by one `LineTicks` for all of them: one flush per
tick (`flush_interval`) takes the pending lines of every build whose record is stored and
whose last flush is not queued, stores them in one transaction (one executemany INSERT),
and then shows each build's lines to its watchers (stored before shown). Every write of log
lines, the tick's and a build's own journal flush (its first lines, its last lines with its
result), holds `LineTicks.lock`: one at a time, each taking the oldest pending lines of a
build, so lines are stored and shown in seq order; a failed write puts its lines back in
front. A build's last write (its last lines and its result) is tried again until it is
stored (`until_stored`), so a database away for a while loses neither, and the build stays
in memory, its watchers waiting, until then. Once a build has ended, no other write takes
its lines (a tick, or a journal flush that was waiting for the lock): its terminal line is
stored with its result, so a watcher that sees the end finds the record ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger("fancy_env.builder")

#: seconds between tries of a write that must not be lost; the last one repeats
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Journal:
    """Ordered awaited writes (see the module doc)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._tail: asyncio.Task[Any] | None = None
        self.pending_flush: asyncio.Task[Any] | None = None  # a flush not started yet
        self.final_queued = False  # the build's last flush (lines and result) is queued
        self.recorded = True  # its record is stored (a new build: once its first write ends)

    def submit(self, write: Callable[[], Awaitable[Any]], what: str = "") -> asyncio.Task[Any]:
        """Run `write()` after every write submitted before it; its task (failures are
        logged; awaiting the task raises them)."""
        previous = self._tail

        async def run() -> Any:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                return await write()
            except Exception:
                log.exception("build %s: storing %s failed", self.name, what or "a change")
                raise

        task = asyncio.get_running_loop().create_task(run())
        task.add_done_callback(_consume)
        self._tail = task
        return task

    async def drain(self) -> None:
        """Wait until every write submitted so far has ended (failed ones included)."""
        while self._tail is not None:
            tail = self._tail
            await asyncio.wait([tail])
            if self._tail is tail:
                return


class Pending(Protocol):
    """What `LineTicks` needs of a running build (`stream.ActiveBuild`)."""

    id: str
    unflushed: list[Any]
    journal: Journal
    done: bool  # its terminal event is emitted: its last flush stores it with the result

    @property
    def seq(self) -> int: ...

    def take_unflushed(self) -> list[Any]: ...

    def publish(self, seq: int) -> None: ...


class LineTicks:
    """One flush per tick of the pending log lines of every build (see the module doc)."""

    def __init__(self, store: Callable[[list[Any]], Awaitable[Any]], interval: float) -> None:
        self.store = store  # one transaction storing lines of any builds
        self.interval = interval
        self.lock = asyncio.Lock()  # held by every write of log lines
        self.dirty: dict[str, Pending] = {}  # builds with lines for the next tick
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None

    def schedule(self, build: Pending) -> None:
        """Store (then show) `build`'s new lines at the next tick."""
        self.dirty[build.id] = build
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.flush())
            self._task.add_done_callback(_consume)
        else:  # the last tick's write is still under way: this one comes after it
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    async def flush(self) -> None:
        """Store the pending lines of every dirty build in one transaction, then show them."""
        async with self.lock:
            taken = []
            for build in list(self.dirty.values()):
                if not build.journal.recorded:
                    continue  # its journal's first flush takes them, after the record
                del self.dirty[build.id]
                # an ended build's lines (its terminal event among them) wait for its last
                # flush, which stores them with the result: watchers never see the end first
                if not build.journal.final_queued and not build.done and build.unflushed:
                    taken.append((build, build.take_unflushed()))
            if not taken:
                return
            try:
                await self.store([line for _, lines in taken for line in lines])
            except Exception:
                log.exception("storing the log lines of %d build(s) failed", len(taken))
                for build, lines in taken:
                    build.unflushed[:0] = lines  # the flusher retries
                raise
            for build, _ in taken:
                build.publish(build.seq - len(build.unflushed))

    async def idle(self) -> None:
        """Wait for the write under way (if any) to end."""
        async with self.lock:
            pass

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def until_stored(
    write: Callable[[], Awaitable[Any]], stopping: asyncio.Event, what: str
) -> Any:
    """`write()`, tried again after each failure (`RETRY_DELAYS`, each failure logged) until
    it succeeds; once `stopping` is set, a failure is raised (the next start of the service
    marks a build whose result it could not store as interrupted)."""
    failures = 0
    while True:
        try:
            return await write()
        except Exception as e:
            if stopping.is_set():
                raise
            delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
            failures += 1
            log.warning("%s failed (%s: %s); trying again in %g s", what, type(e).__name__, e,
                        delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)


def _consume(task: asyncio.Task[Any]) -> None:
    """Mark a write's failure as seen (it was logged), so asyncio does not warn again."""
    if not task.cancelled():
        task.exception()
