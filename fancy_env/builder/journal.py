"""The database writes of one build, in the order they were asked for, off their callers.

The build service changes a build's state synchronously (phase changes come from `emit`,
a slot from the queue's callback, a cancel from the watchdog), so that no await can come
between a check and what follows from it. What those changes store goes into the build's
`Journal`: each write is a task that starts once the previous one ended, so the record is
inserted before its first update, and log batches are stored in seq order.

A flush takes its lines when it runs, not when it was asked for, and at most one flush waits
at a time: a build emitting 1,000 lines in a burst is one awaited batched INSERT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("fancy_env.builder")


class Journal:
    """Ordered awaited writes (see the module doc)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._tail: asyncio.Task[Any] | None = None
        self.pending_flush: asyncio.Task[Any] | None = None  # a flush not started yet
        self.final_queued = False  # the build's last flush (lines and result) is queued

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


def _consume(task: asyncio.Task[Any]) -> None:
    """Mark a write's failure as seen (it was logged), so asyncio does not warn again."""
    if not task.cancelled():
        task.exception()
