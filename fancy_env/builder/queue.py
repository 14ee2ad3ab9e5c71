"""A fair build queue: a global concurrency limit, a per-user limit, round-robin between users.

Pure scheduling (no I/O, no asyncio): `submit` puts a build in line, `done` frees its slot,
and both call `start(build)` for every build that may start now. Among waiting builds whose
user is under the per-user limit, the one whose user runs the fewest builds starts first, then
the one whose user was served least recently, then the one that waited longest: users take
turns, so one user's pile of builds never starves the others.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Queued(Protocol):
    @property
    def user(self) -> str: ...


T = TypeVar("T", bound=Queued)


@dataclass
class FairQueue(Generic[T]):
    start: Callable[[T], None]
    max_concurrent: int = 2
    max_per_user: int = 1
    pending: list[tuple[int, T]] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    last_start: dict[str, int] = field(default_factory=dict)
    _starts: itertools.count[int] = field(default_factory=itertools.count)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def running_total(self) -> int:
        return sum(self.running.values())

    def __len__(self) -> int:
        return len(self.pending)

    def submit(self, item: T) -> None:
        self.pending.append((next(self._order), item))
        self._schedule()

    def adopt(self, item: T) -> None:
        """Count an already-running item (adopted after a restart) without queueing it."""
        self.running[item.user] = self.running.get(item.user, 0) + 1

    def remove(self, item: T) -> bool:
        """Take a waiting item out of the line; False if it is not waiting."""
        for i, (_, waiting) in enumerate(self.pending):
            if waiting is item:
                del self.pending[i]
                return True
        return False

    def done(self, item: T) -> None:
        """A running item finished: free its slots and start what may start."""
        count = self.running.get(item.user, 0) - 1
        if count > 0:
            self.running[item.user] = count
        else:
            self.running.pop(item.user, None)
        self._schedule()

    def position(self, item: T) -> int:
        """1-based place in the line, 0 when not waiting."""
        for i, (_, waiting) in enumerate(self.pending):
            if waiting is item:
                return i + 1
        return 0

    def _next(self) -> int | None:
        best: tuple[int, int, int] | None = None
        best_index = None
        for i, (order, item) in enumerate(self.pending):
            load = self.running.get(item.user, 0)
            if load >= self.max_per_user:
                continue
            key = (load, self.last_start.get(item.user, -1), order)
            if best is None or key < best:
                best, best_index = key, i
        return best_index

    def _schedule(self) -> None:
        while self.running_total < self.max_concurrent:
            index = self._next()
            if index is None:
                return
            _, item = self.pending.pop(index)
            self.running[item.user] = self.running.get(item.user, 0) + 1
            self.last_start[item.user] = next(self._starts)
            self.start(item)
