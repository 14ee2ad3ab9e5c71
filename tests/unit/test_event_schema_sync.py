"""The TypeScript event schema (frontend/src/api/buildEvents.ts) matches events.py, and the
phase names the frontend and the service's pages use are the phases of events.py."""

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


# --- phase names: one list per language, every use checked against events.PHASES ----------

FRONTEND = TS.parents[1]
TEMPLATES = Path(events.__file__).resolve().parents[1] / "sharing" / "templates"
# phases that only a list of phases would name (terminal ones and "queued" have other uses)
LIST_ONLY = ("resolving", "fetching", "pushing")


def _frontend_sources() -> list[Path]:
    files = [*FRONTEND.rglob("*.ts"), *FRONTEND.rglob("*.tsx")]
    return sorted(f for f in files if ".test." not in f.name and "testing" not in f.parts)


def test_typescript_has_one_phase_list() -> None:
    """Progress bars and checks derive from buildEvents.ts (PHASES, TERMINAL_PHASES,
    PROGRESS_STEPS), so a phase added in events.py needs one TypeScript edit, checked above."""
    seconds = [
        f"{f.relative_to(FRONTEND)}: {name}"
        for f in _frontend_sources()
        if f != TS
        for name in LIST_ONLY
        if f'"{name}"' in f.read_text()
    ]
    assert seconds == [], "a second phase list; use PHASES from api/buildEvents.ts"


@pytest.mark.parametrize(
    "path",
    [*_frontend_sources(), *sorted(TEMPLATES.glob("*.html"))],
    ids=lambda p: p.name,
)
def test_phase_comparisons_name_real_phases(path: Path) -> None:
    """`phase === "x"` in TypeScript or a page's inline script: x is a phase of events.py
    (tsc checks the typed ones too; this also covers untyped script in templates)."""
    text = path.read_text()
    compared = re.findall(r"phase\s*[!=]==?\s*[\"']([a-z_]+)[\"']", text)
    compared += re.findall(r"[\"']([a-z_]+)[\"']\s*[!=]==?\s*[\w.]*phase\b", text)
    assert set(compared) <= set(events.PHASES), path


def test_ui_build_status_covers_the_terminal_phases() -> None:
    """The form's BuildStatus (useBuild.ts) is its own states plus every terminal phase: a
    terminal phase added in events.py must get a state (and an announcement) in the form."""
    source = (FRONTEND / "useBuild.ts").read_text()
    m = re.search(r"export type BuildStatus\s*=([^;]*);", source)
    assert m, "BuildStatus not found in useBuild.ts"
    statuses = set(re.findall(r'"([a-z_]+)"', m.group(1)))
    assert statuses - {"idle", "requesting", "running"} == set(events.TERMINAL_PHASES)
