"""The fair queue's scheduling, as a pure table of submissions and completions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fancy_env.builder.queue import FairQueue


@dataclass(eq=False)
class Item:
    user: str
    name: str


def run(max_concurrent: int, max_per_user: int, submits: list[str]) -> list[str]:
    """Submit items ('alice:a0'), then finish them in start order; return the start order."""
    started: list[Item] = []
    queue: FairQueue[Item] = FairQueue(started.append, max_concurrent, max_per_user)
    for spec in submits:
        user, name = spec.split(":")
        queue.submit(Item(user, name))
    done = 0
    while done < len(started):
        queue.done(started[done])
        done += 1
    assert not queue.pending and queue.running_total == 0
    return [i.name for i in started]


@pytest.mark.parametrize(
    ("limits", "submits", "order"),
    [
        ((1, 5), ["a:a0", "a:a1", "a:a2", "b:b0"], ["a0", "b0", "a1", "a2"]),
        ((1, 5), ["a:a0", "a:a1", "b:b0", "b:b1", "c:c0"], ["a0", "b0", "c0", "a1", "b1"]),
        ((2, 1), ["a:a0", "a:a1", "b:b0"], ["a0", "b0", "a1"]),
        ((3, 1), ["a:a0", "a:a1", "a:a2"], ["a0", "a1", "a2"]),
        ((2, 2), ["a:a0", "a:a1", "a:a2", "b:b0"], ["a0", "a1", "b0", "a2"]),
    ],
)
def test_start_order(limits: tuple[int, int], submits: list[str], order: list[str]) -> None:
    assert run(*limits, submits) == order


def test_limits_hold_and_remove() -> None:
    started: list[Item] = []
    queue: FairQueue[Item] = FairQueue(started.append, 2, 1)
    items = [Item("a", "a0"), Item("a", "a1"), Item("b", "b0"), Item("c", "c0")]
    for item in items:
        queue.submit(item)
    assert [i.name for i in started] == ["a0", "b0"]
    assert queue.position(items[1]) == 1 and queue.position(items[3]) == 2
    assert queue.remove(items[3]) and not queue.remove(items[3])
    queue.done(items[0])
    assert [i.name for i in started] == ["a0", "b0", "a1"]
    assert len(queue) == 0


def test_adopted_items_count() -> None:
    started: list[Item] = []
    queue: FairQueue[Item] = FairQueue(started.append, 1, 1)
    adopted = Item("a", "old")
    queue.adopt(adopted)
    queue.submit(Item("b", "b0"))
    assert started == []
    queue.done(adopted)
    assert [i.name for i in started] == ["b0"]
