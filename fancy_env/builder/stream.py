"""A build in progress: its events in memory, watchers woken when new ones are stored.

Every event gets the next `seq` of its build (the SSE id). Events are kept in memory while
the build is active and written to the database in small batches (a few milliseconds after
they are emitted, and at once when the build ends). Watchers see an event only once it is
stored (`published`): a crash can never have shown a line that a restarted service does not
know, so ids are never reused and a reconnect with `Last-Event-ID` gets exactly what it
missed, from memory or from the database.

The stored log of a build is capped (`LogCap`): past `max_bytes` or `max_lines` of executor
output, one line says the log was cut and where; later lines are dropped (they still count
as output for the silence timeout), while phase changes and the terminal event are kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .events import TERMINAL_PHASES, BuildEvent, make_event
from .executors.base import BuildJob
from .journal import Journal


@dataclass(frozen=True)
class LogCap:
    """The most executor output stored per build (0 = no limit)."""

    max_bytes: int = 0
    max_lines: int = 0

    def exceeded(self, lines: int, size: int) -> bool:
        """True if a log of `lines` lines and `size` bytes is over the cap."""
        return (0 < self.max_lines < lines) or (0 < self.max_bytes < size)

    def describe(self) -> str:
        parts = []
        if self.max_lines:
            parts.append(f"max_log_lines = {self.max_lines}")
        if self.max_bytes:
            parts.append(f"max_log_bytes = {self.max_bytes}")
        return ", ".join(parts)


class ActiveBuild:
    def __init__(
        self,
        build_id: str,
        user: str,
        job: BuildJob,
        base_seq: int = 0,
        cap: LogCap | None = None,
    ) -> None:
        self.id = build_id
        self.user = user
        self.job = job
        self.base_seq = base_seq
        self.events: list[BuildEvent] = []
        self.sse: list[str] = []  # each event serialised once, for every watcher
        self.unflushed: list[BuildEvent] = []
        self.phase = "queued"
        self.last_output = time.monotonic()
        self.started: float | None = None  # monotonic, for the timeouts
        self.started_at: float | None = None  # wall clock, as stored
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: tuple[str, str] | None = None
        self.done = False
        self.on_phase: Callable[[ActiveBuild, str], None] | None = None
        self.on_emit: Callable[[ActiveBuild], None] | None = None
        self.published = base_seq  # the last seq stored in the database (visible to watchers)
        self._changed = asyncio.Event()
        self.cap = cap or LogCap()
        self.log_lines = 0  # executor output kept so far (what the cap counts)
        self.log_bytes = 0
        self.truncated = False
        self.on_truncate: Callable[[ActiveBuild], None] | None = None
        self.journal = Journal(build_id)  # its database writes, in order

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
        """The executor's `emit`: log output in a phase, one event per line (an engine's
        stream hands over chunks of many lines); dropped once the log is cut."""
        if not self.truncated:
            for line in message.split("\n") if "\n" in message else (message,):
                if line and not self._keep(phase, line):
                    break
            else:
                return
        self.last_output = time.monotonic()  # output all the same: no silence timeout
        if phase != self.phase:
            self.emit(phase, f"Phase {phase} (log lines are no longer stored: the log was cut)")

    def _keep(self, phase: str, line: str) -> bool:
        """Emit one line if it fits under the cap; otherwise cut the log (once) and say so."""
        size = len(line.encode("utf-8", "replace"))
        if self.cap.exceeded(self.log_lines + 1, self.log_bytes + size):
            self._truncate()
            return False
        self.log_lines += 1
        self.log_bytes += size
        self.emit(phase, line)
        return True

    def _truncate(self) -> None:
        self.truncated = True
        self.emit(
            self.phase,
            f"Log cut after {self.log_lines} lines ({self.log_bytes} bytes) at the limit "
            f"({self.cap.describe()}): later lines are not stored or shown; phase changes "
            "and the result still are.",
        )
        if self.on_truncate is not None:
            self.on_truncate(self)

    def take_unflushed(self) -> list[BuildEvent]:
        lines, self.unflushed = self.unflushed, []
        return lines

    def sse_after(self, seq: int, limit: int = 1000) -> tuple[str, int]:
        """At most `limit` published events after `seq`, serialised as one chunk, and the
        last seq in it."""
        start = max(seq - self.base_seq, 0)
        end = min(self.published - self.base_seq, start + limit)
        if end <= start:
            return "", seq
        return "".join(self.sse[start:end]), self.base_seq + end

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for a new event; False on timeout."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class StreamSlots:
    """Open event streams per user, at most `max_per_user` each (0 = no limit)."""

    max_per_user: int = 0
    open: dict[str, int] = field(default_factory=dict)

    def acquire(self, user: str) -> bool:
        count = self.open.get(user, 0)
        if 0 < self.max_per_user <= count:
            return False
        self.open[user] = count + 1
        return True

    def release(self, user: str) -> None:
        count = self.open.get(user, 0) - 1
        if count > 0:
            self.open[user] = count
        else:
            self.open.pop(user, None)


#: loads the stored events of a build after a seq: (build_id, after, limit=, upto=)
PageLoader = Callable[..., Awaitable[list[BuildEvent]]]

#: events serialised per turn of the event loop (about 1 ms of JSON on a slow core)
SERIALISE_SLICE = 100


async def serialise(events: list[BuildEvent]) -> bytes:
    """The events as SSE bytes, a slice per turn of the event loop (other requests run in
    between: a 500-line page is about 5 ms of JSON). The first slice too waits a turn: the
    turn that read the page already made its rows into events."""
    parts = []
    for start in range(0, len(events), SERIALISE_SLICE):
        await asyncio.sleep(0)
        parts.append("".join(e.sse() for e in events[start : start + SERIALISE_SLICE]).encode())
    return b"".join(parts)


@dataclass
class ReplayCache:
    """Serialised pages of stored logs, shared by every watcher replaying the same log.

    Only full pages are kept: stored lines never change, so a page of `size` lines after a
    given seq is the same for every watcher (20 watchers of one log serialise it once).
    Least recently used pages go first once `max_bytes` is reached. A page is read once for
    all the watchers asking for it at the same time (`page`: single flight): the others
    await the first one's read instead of each missing the cache and querying.
    """

    max_bytes: int = 16 * 1024 * 1024
    pages: OrderedDict[tuple[str, int, int], tuple[bytes, int]] = field(default_factory=OrderedDict)
    size: int = 0
    reads: int = 0  # pages read from the database (for tests and benches)
    _loading: dict[tuple[str, int, int, int | None], asyncio.Future[tuple[bytes, int, int]]] = (
        field(default_factory=dict)
    )

    async def page(
        self, build_id: str, after: int, size: int, upto: int | None, load: PageLoader
    ) -> tuple[bytes, int, int]:
        """(SSE bytes, last seq, count) of the stored page of `size` events after `after`
        (up to `upto`): from the cache, from a read under way, or read now."""
        hit = self.get(build_id, after, size)
        if hit is not None and (upto is None or hit[1] <= upto):
            return hit[0], hit[1], size
        key = (build_id, after, size, upto)
        loading = self._loading.get(key)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[tuple[bytes, int, int]] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            self.reads += 1
            events = await load(build_id, after, limit=size, upto=upto)
            chunk = await serialise(events)
            result = (chunk, int(events[-1].seq) if events else after, len(events))
            if len(events) == size:
                self.put(build_id, after, size, chunk, result[1])
            future.set_result(result)
            return result
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: waiters get it, nobody else need
            raise
        finally:
            del self._loading[key]

    def get(self, build_id: str, after: int, page: int) -> tuple[bytes, int] | None:
        key = (build_id, after, page)
        hit = self.pages.get(key)
        if hit is not None:
            self.pages.move_to_end(key)
        return hit

    def put(self, build_id: str, after: int, page: int, chunk: bytes, last: int) -> None:
        if len(chunk) > self.max_bytes:
            return
        key = (build_id, after, page)
        if key in self.pages:
            return
        self.pages[key] = (chunk, last)
        self.size += len(chunk)
        while self.size > self.max_bytes:
            _, (old, _) = self.pages.popitem(last=False)
            self.size -= len(old)
