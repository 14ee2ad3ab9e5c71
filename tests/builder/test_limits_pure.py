"""The limits' pure parts as parameter tables: JSON body checks, integer parameters, the
log cap of a build, and the per-user stream slots."""

from __future__ import annotations

import json

import pytest

from fancy_env.builder.executors.base import BuildJob
from fancy_env.builder.stream import ActiveBuild, LogCap, ReplayCache, StreamSlots
from fancy_env.webinput import InputError, int_param, json_depth, parse_json_body

DEEP = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"1", 0),
        (b'"[[[["', 0),
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "}}}]]] \\" [[[["}', 1),
        (b"[[[]]][[]]", 3),
        (DEEP, 10_000),
    ],
)
def test_json_depth(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (DEEP, 400, "nested 10000 levels deep; at most 32"),
        (b"[" * 33 + b"]" * 33, 400, "nested 33 levels deep"),
        (b"x" * 70_000, 413, "70000 bytes; at most 65536"),
        (b"{nope", 400, "must be JSON"),
        (b"[" * 20 + b"1", 400, "must be JSON"),
    ],
)
def test_parse_json_body_refusals(raw: bytes, status: int, words: str) -> None:
    with pytest.raises(InputError) as err:
        parse_json_body(raw)
    assert (err.value.status, err.value.field) == (status, "body")
    assert words in err.value.message


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (None, {}),
        (b"", {}),
        (b"  ", {}),
        (b'{"repo": "o/r"}', {"repo": "o/r"}),
        (b"[" * 32 + b"]" * 32, json.loads("[" * 32 + "]" * 32)),
    ],
)
def test_parse_json_body_accepts(raw: bytes | None, value: object) -> None:
    assert parse_json_body(raw) == value


def test_zero_turns_checks_off() -> None:
    assert parse_json_body(b"[" * 40 + b"]" * 40, max_bytes=0, max_depth=0) is not None
    with pytest.raises(InputError, match="must be JSON"):
        parse_json_body(DEEP, max_depth=0)  # json's own recursion limit: still a 400


@pytest.mark.parametrize(
    ("raw", "result"),
    [
        (None, 100),
        ("", 100),
        ("1", 1),
        ("1000", 1000),
        (" 7 ", 7),
        ("-1", "from 1 to 1000, not -1"),
        ("0", "not 0"),
        ("1001", "not 1001"),
        ("99999999999999999999999", "must be an integer from 1 to 1000"),
        ("abc", "must be an integer"),
        ("1.5", "must be an integer"),
        ("1e3", "must be an integer"),
        ("0x10", "must be an integer"),
    ],
)
def test_int_param(raw: str | None, result: int | str) -> None:
    if isinstance(result, int):
        assert int_param(raw, "limit", 1, 1000, 100) == result
    else:
        with pytest.raises(InputError) as err:
            int_param(raw, "limit", 1, 1000, 100)
        assert err.value.field == "limit" and err.value.status == 400
        assert result in err.value.message


@pytest.mark.parametrize(
    ("cap", "lines", "size", "over"),
    [
        (LogCap(), 10**9, 10**12, False),
        (LogCap(max_lines=3), 3, 0, False),
        (LogCap(max_lines=3), 4, 0, True),
        (LogCap(max_bytes=10), 100, 10, False),
        (LogCap(max_bytes=10), 1, 11, True),
        (LogCap(10, 3), 4, 1, True),
    ],
)
def test_log_cap_exceeded(cap: LogCap, lines: int, size: int, over: bool) -> None:
    assert cap.exceeded(lines, size) is over


def _job() -> BuildJob:
    return BuildJob("b", "https://h/r", "", "c" * 40, "", "img:c", False)


@pytest.mark.parametrize(
    ("cap", "kept"),
    [(LogCap(max_lines=5), 5), (LogCap(max_bytes=27), 3), (LogCap(), 20)],
)
def test_active_build_cuts_its_log(cap: LogCap, kept: int) -> None:
    active = ActiveBuild("b", "alice", _job(), cap=cap)
    cut: list[ActiveBuild] = []
    active.on_truncate = cut.append
    for i in range(10):
        active.log_line("fetching", f"fetch {i:03d}")  # 9 bytes each
    for i in range(10):
        active.log_line("building", f"build {i:03d}")
    active.emit("built", "Built img:c", "img:c")
    messages = [e.message for e in active.events]
    phases = [e.phase for e in active.events]
    assert active.log_lines == kept
    assert len([m for m in messages if m.startswith(("fetch ", "build "))]) == kept
    if kept < 20:
        assert cut == [active] and active.truncated
        [note] = [m for m in messages if m.startswith("Log cut")]
        assert f"after {kept} lines" in note
        assert "building" in phases, "the phase change after the cut is kept"
    else:
        assert not cut and not active.truncated
    assert phases[-1] == "built" and active.events[-1].image == "img:c"


@pytest.mark.parametrize(
    ("limit", "ops", "answers"),
    [
        (2, ["+a", "+a", "+a", "+b", "-a", "+a", "+a"], [True, True, False, True, True, False]),
        (0, ["+a"] * 5, [True] * 5),
        (1, ["+a", "-a", "-a", "+a", "+a"], [True, True, False]),
    ],
)
def test_stream_slots(limit: int, ops: list[str], answers: list[bool]) -> None:
    slots = StreamSlots(limit)
    got = []
    for op in ops:
        if op[0] == "+":
            got.append(slots.acquire(op[1:]))
        else:
            slots.release(op[1:])
    assert got == answers
    assert all(count > 0 for count in slots.open.values())


def test_a_chunk_of_lines_is_one_event_per_line_and_cut_between_lines() -> None:
    active = ActiveBuild("b", "alice", _job(), cap=LogCap(max_lines=4))
    active.log_line("building", "1\n2\n3")  # an engine's stream chunk
    active.log_line("building", "4\n\n5\n6")
    active.log_line("building", "7")
    messages = [e.message for e in active.events]
    assert messages[:4] == ["1", "2", "3", "4"]
    assert len(messages) == 5 and messages[4].startswith("Log cut after 4 lines (4 bytes)")
    assert active.log_lines == 4 and active.truncated


def test_replay_cache_keeps_the_most_recent_pages_within_its_size() -> None:
    cache = ReplayCache(max_bytes=10)
    cache.put("b", 0, 2, b"aaaa", 2)
    cache.put("b", 2, 2, b"bbbb", 4)
    assert cache.get("b", 0, 2) == (b"aaaa", 2)  # now the most recently used
    cache.put("b", 4, 2, b"cccc", 6)  # over 10 bytes: the least recently used goes
    assert cache.get("b", 2, 2) is None
    assert cache.get("b", 0, 2) == (b"aaaa", 2) and cache.get("b", 4, 2) == (b"cccc", 6)
    assert cache.get("b", 0, 3) is None and cache.get("x", 0, 2) is None
    cache.put("b", 6, 2, b"x" * 11, 8)  # bigger than the whole cache: not kept
    assert cache.size == 8
