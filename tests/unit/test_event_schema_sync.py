"""The TypeScript event schema (frontend/src/api/buildEvents.ts) matches events.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fancy_env.builder import events

TS = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "buildEvents.ts"


def _source() -> str:
    text = TS.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def ts_array(name: str) -> list[str]:
    m = re.search(rf"export const {name}\b[^=]*=\s*\[(.*?)\]", _source(), re.S)
    assert m, f"{name} not found in {TS}"
    return re.findall(r'"([^"]+)"', m.group(1))


def ts_interface(name: str) -> dict[str, str]:
    m = re.search(rf"export interface {name}\b[^{{]*\{{(.*?)\}}", _source(), re.S)
    assert m, f"interface {name} not found in {TS}"
    fields = {}
    for line in m.group(1).split(";"):
        line = line.strip()
        if line:
            key, _, value = line.partition(":")
            fields[key.strip()] = " ".join(value.split())
    return fields


def test_phases() -> None:
    assert ts_array("PHASES") == list(events.PHASES)


def test_terminal_phases() -> None:
    assert set(ts_array("TERMINAL_PHASES")) == set(events.TERMINAL_PHASES)


@pytest.mark.parametrize(
    ("interface", "fields"),
    [
        ("BuildEvent", events.EVENT_FIELDS),
        ("BuildRecord", events.RECORD_FIELDS),
        ("BuildDetail", events.DETAIL_FIELDS),
        ("ApiError", events.ERROR_FIELDS),
    ],
)
def test_interfaces(interface: str, fields: dict[str, str]) -> None:
    assert ts_interface(interface) == fields


def test_python_payloads_have_the_documented_fields() -> None:
    from fancy_env.builder.db import Build

    event = events.make_event("b1", 1, "built", "done", "img")
    assert list(event.to_json()) == list(events.EVENT_FIELDS)
    record = Build(id="b1", user="u", repo="r", status="queued", created=1.0).to_json()
    assert list(record) == list(events.RECORD_FIELDS)
