"""Incremental parser for the `text/event-stream` format (pure: no I/O).

The one event-stream parser of the Python side: `fancy-env build` (`cli_build.py`), the test
helpers (`tests/support/builder.py`) and the benches use it. Its TypeScript twin is
`frontend/src/sse.ts` (the form and the sharing service's building page use that one).

The WHATWG rules that matter here: lines end with LF, CRLF or CR; `data:` lines join with
"\\n"; `id:` sets the last event id (kept for `Last-Event-ID`); `retry:` sets the reconnection
delay; lines starting with ":" are comments (the service's keepalives); a blank line dispatches
the event, and an event without data is not dispatched.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SseMessage:
    data: str
    id: str | None = None
    event: str = "message"

    def json(self) -> Any:
        """The `data` decoded as JSON (raises ValueError when it is not JSON)."""
        return json.loads(self.data)


@dataclass(frozen=True)
class SseComment:
    """A `:` line: the service sends `: keepalive` while a build is quiet."""

    text: str


class SseParser:
    """Feed text (or bytes, decoded as UTF-8 across chunk boundaries); get what completed."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.reset()

    def reset(self) -> None:
        """Forget a half-received line or event (a dropped connection). Keeps
        `last_event_id`, so a reconnect sending it gets that event again, whole."""
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._decoder.reset()

    def feed_bytes(self, chunk: bytes) -> list[SseMessage | SseComment]:
        return self.feed(self._decoder.decode(chunk))

    def feed(self, chunk: str) -> list[SseMessage | SseComment]:
        text = self._buffer + chunk
        # a CR at the very end may be the first half of CRLF: keep it for the next chunk
        cut = len(text) - 1 if text.endswith("\r") else len(text)
        lines = _LINE_END.split(text[:cut])
        self._buffer = lines.pop() + text[cut:]
        out: list[SseMessage | SseComment] = []
        for line in lines:
            item = self.feed_line(line)
            if item is not None:
                out.append(item)
        return out

    def feed_line(self, line: str) -> SseMessage | SseComment | None:
        """One line without its line end (e.g. from `requests`' `iter_lines`)."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return SseComment(line[1:].removeprefix(" "))
        field, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseMessage | None:
        if self._id is not None:
            self.last_event_id = self._id
        message = None
        if self._data:
            message = SseMessage("\n".join(self._data), self._id, self._event or "message")
        self._data, self._event, self._id = [], "", None
        return message


def iter_lines(
    lines: Iterable[str], parser: SseParser | None = None
) -> Iterator[SseMessage | SseComment]:
    """Parse lines already split (without their line ends)."""
    parser = parser or SseParser()
    for line in lines:
        item = parser.feed_line(line)
        if item is not None:
            yield item


def build_event(message: SseMessage | SseComment) -> dict[str, Any] | None:
    """The build event (`events.BuildEvent.to_json()`) a message carries, or None."""
    if not isinstance(message, SseMessage):
        return None
    try:
        event = message.json()
    except ValueError:
        return None
    return event if isinstance(event, dict) and "phase" in event else None
