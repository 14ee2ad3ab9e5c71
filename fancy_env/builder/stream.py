"""A build in progress: its events in memory, watchers woken when new ones are stored.

Every event gets the next `seq` of its build (the SSE id). Events are kept in memory while
the build is active and written to the database in small batches (a few milliseconds after
they are emitted, and at once when the build ends). Watchers see an event only once it is
stored (`published`): a crash can never have shown a line that a restarted service does not
know, so ids are never reused and a reconnect with `Last-Event-ID` gets exactly what it
missed, from memory or from the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .events import TERMINAL_PHASES, BuildEvent, make_event
from .executors.base import BuildJob


class ActiveBuild:
    def __init__(self, build_id: str, user: str, job: BuildJob, base_seq: int = 0) -> None:
        self.id = build_id
        self.user = user
        self.job = job
        self.base_seq = base_seq
        self.events: list[BuildEvent] = []
        self.sse: list[str] = []  # each event serialised once, for every watcher
        self.unflushed: list[BuildEvent] = []
        self.phase = "queued"
        self.last_output = time.monotonic()
        self.started: float | None = None
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: tuple[str, str] | None = None
        self.done = False
        self.on_phase: Callable[[ActiveBuild, str], None] | None = None
        self.on_emit: Callable[[ActiveBuild], None] | None = None
        self.published = base_seq  # the last seq stored in the database (visible to watchers)
        self._changed = asyncio.Event()

    @property
    def seq(self) -> int:
        return self.events[-1].seq if self.events else self.base_seq

    def emit(self, phase: str, message: str, image: str | None = None) -> BuildEvent:
        event = make_event(self.id, self.seq + 1, phase, message, image)
        self.events.append(event)
        self.sse.append(event.sse())
        self.unflushed.append(event)
        self.last_output = time.monotonic()
        if phase != self.phase:
            self.phase = phase
            if self.on_phase is not None:
                self.on_phase(self, phase)
        if phase in TERMINAL_PHASES:
            self.done = True
        if self.on_emit is not None:
            self.on_emit(self)
        return event

    def publish(self, seq: int) -> None:
        """Events up to `seq` are stored: show them to watchers."""
        if seq > self.published:
            self.published = seq
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    @property
    def closed(self) -> bool:
        """Ended, and every event is stored and visible."""
        return self.done and self.published == self.seq

    def log_line(self, phase: str, message: str) -> None:
        """The executor's `emit`: one log line in a phase."""
        self.emit(phase, message)

    def take_unflushed(self) -> list[BuildEvent]:
        lines, self.unflushed = self.unflushed, []
        return lines

    def sse_after(self, seq: int) -> tuple[str, int]:
        """The published events after `seq`, serialised as one chunk, and the last seq in it."""
        start = max(seq - self.base_seq, 0)
        end = self.published - self.base_seq
        return "".join(self.sse[start:end]), max(seq, self.published)

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for a new event; False on timeout."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return False
        return True
