"""The Python event-stream parser (fancy_env/builder/sse.py): the same cases as the
TypeScript one's table (frontend/src/sse.test.ts), plus what only Python callers feed it."""

from __future__ import annotations

import pytest

from fancy_env.builder.events import make_event
from fancy_env.builder.sse import SseComment, SseMessage, SseParser, build_event, iter_lines

M = SseMessage

CASES = [
    ("one event", ['id: 1\ndata: {"a":1}\n\n'], [M('{"a":1}', "1")]),
    ("split across chunks", ["id: 2\nda", "ta: x\n", "\n"], [M("x", "2")]),
    ("CRLF lines", ["id: 3\r\ndata: y\r\n\r\n"], [M("y", "3")]),
    ("CRLF split between chunks", ["data: y\r", "\n\r\n"], [M("y")]),
    ("CR lines (a last CR waits for a LF)", ["data: y\r\r", ": c\n"], [M("y"), SseComment("c")]),
    ("keepalive comment", [": keepalive\n\n"], [SseComment("keepalive")]),
    ("multi-line data", ["data: a\ndata: b\n\n"], [M("a\nb")]),
    ("named event", ["event: phase\ndata: z\n\n"], [M("z", None, "phase")]),
    ("no space after the colon", ["data:z\n\n"], [M("z")]),
    ("field without a colon", ["data\n\n"], [M("")]),
    ("retry only: nothing dispatched", ["retry: 500\n\n"], []),
    ("unknown field ignored", ["foo: 1\ndata: a\n\n"], [M("a")]),
    ("id with NUL ignored", ["id: a\0b\ndata: a\n\n"], [M("a")]),
    ("no blank line yet", ["data: a\n"], []),
]


@pytest.mark.parametrize(("chunks", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_feed(chunks: list[str], expected: list[SseMessage | SseComment]) -> None:
    parser = SseParser()
    assert [item for chunk in chunks for item in parser.feed(chunk)] == expected


def test_last_event_id_and_retry() -> None:
    parser = SseParser()
    parser.feed("retry: 2500\n\nid: 7\ndata: a\n\nid: 8\ndata: b\n")
    assert (parser.last_event_id, parser.retry_ms) == ("7", 2500)
    parser.feed("\n")
    assert parser.last_event_id == "8"


def test_bytes_split_inside_a_character() -> None:
    data = "data: Schritt 1/2 — ✓\n\n".encode()
    parser = SseParser()
    cut = data.index("✓".encode()) + 1
    assert parser.feed_bytes(data[:cut]) == []
    assert parser.feed_bytes(data[cut:]) == [M("Schritt 1/2 — ✓")]


def test_reset_drops_a_half_event_and_keeps_the_last_id() -> None:
    parser = SseParser()
    parser.feed("id: 1\ndata: a\n\nid: 2\ndata: half")
    parser.reset()
    assert parser.last_event_id == "1"
    assert parser.feed("\nid: 2\ndata: whole\n\n") == [M("whole", "2")]


def test_iter_lines_and_build_event() -> None:
    event = make_event("b1", 3, "built", "done", "img")
    lines = [": keepalive", "", *event.sse().split("\n")]
    items = list(iter_lines(lines))
    assert items == [SseComment("keepalive"), M(event.sse().split("data: ")[1].strip(), "3")]
    assert [build_event(item) for item in items] == [None, event.to_json()]
    assert build_event(M("not json")) is None
    assert build_event(M('{"no": "phase"}')) is None
