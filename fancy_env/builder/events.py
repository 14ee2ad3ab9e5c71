"""The build event schema: the one source of truth on the Python side.

Its TypeScript twin is `frontend/src/api/buildEvents.ts`; `tests/unit/test_event_schema_sync.py`
keeps the two in step (phases, event fields, record fields).

Every event on `GET api/builds/<id>/events` is one SSE message::

    id: <seq>
    data: {"build_id": "...", "seq": 7, "phase": "building", "message": "Step 2/3 ...",
           "time": 1700000000.1, "image": null}

`seq` counts from 1 per build and is the SSE `id`, so `Last-Event-ID: 7` resumes at 8.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

PHASES: tuple[str, ...] = (
    "queued",
    "resolving",
    "fetching",
    "building",
    "pushing",
    "built",
    "failed",
    "cancelled",
)
TERMINAL_PHASES: frozenset[str] = frozenset({"built", "failed", "cancelled"})
ACTIVE_PHASES: frozenset[str] = frozenset(PHASES) - TERMINAL_PHASES

# field name -> TypeScript type (the sync test compares these with buildEvents.ts)
EVENT_FIELDS: dict[str, str] = {
    "build_id": "string",
    "seq": "number",
    "phase": "BuildPhase",
    "message": "string",
    "time": "number",
    "image": "string | null",
}

RECORD_FIELDS: dict[str, str] = {
    "id": "string",
    "user": "string",
    "repo": "string",
    "ref": "string",
    "subdir": "string",
    "commit": "string",
    "image": "string",
    "status": "BuildPhase",
    "reason": "string",
    "cache_hit": "boolean",
    "created": "number",
    "started": "number | null",
    "finished": "number | null",
    "log_truncated": "boolean",
    "rebuild": "boolean",
    "rebuild_of": "string",
    "digest": "string",
    "private": "boolean",
    "events_url": "string",
}


# `GET api/builds/<id>` adds these to the record
DETAIL_FIELDS: dict[str, str] = {
    "queue_position": "number",
    "users": "string[]",
    "launch_image": "string",
}

# the body of every 4xx answer ("?" = optional)
ERROR_FIELDS: dict[str, str] = {"status": "number", "message": "string", "field?": "string"}


@dataclass(frozen=True)
class BuildEvent:
    build_id: str
    seq: int
    phase: str
    message: str
    time: float
    image: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "seq": self.seq,
            "phase": self.phase,
            "message": self.message,
            "time": self.time,
            "image": self.image,
        }

    def sse(self) -> str:
        """The event as one server-sent-events message (`id:` = seq)."""
        return f"id: {self.seq}\ndata: {json.dumps(self.to_json())}\n\n"


def make_event(build_id: str, seq: int, phase: str, message: str, image: str | None = None):
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")
    return BuildEvent(build_id, seq, phase, message, time.time(), image)
