"""The load of bench_eventloop.py: event-stream replay clients and a `GET health` poller.

Both speak HTTP/1.0 over raw asyncio sockets (the server closes each response, so a body is
"everything until EOF": no client library, no chunked decoding in the measured path). They
import nothing of the service, so they work against any version of it.

- `replay_clients(...)`: n clients each read one build's whole event stream, as cheaply as a
  check allows (no JSON, no per-line Python): a client hashes its events (SHA-256 of the
  stream minus keepalive comments) and counts them, and the stream must end right after a
  whole event, the terminal one. The bench replays once more with the shared parser
  (`fancy_env.builder.sse`), checks every id and numbered line of that replay in order, and
  hashes it the same way: every client must have received exactly those bytes.
- `poll_health(...)`: one `GET <prefix>health` every `interval` seconds on a new connection,
  *open-loop*: a request is sent at its scheduled time even while earlier ones are still
  waiting, so a stalled event loop shows in every request it held up, not in one slow sample
  (no coordinated omission). Each sample is (scheduled offset, latency, lateness); lateness =
  how late the poller itself sent it, its own overhead.

`python3 bench/loadgen.py clients HOST PORT PATH HEADER VALUE N` runs the replay clients in a
process of their own and prints their results as one JSON line (bench_eventloop.py does so,
so that parsing 50 streams never delays the poller's clock).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

ID_LINE = re.compile(rb"^id: (\d+)$", re.M)
TERMINAL = (b'"phase": "built"', b'"phase": "failed"', b'"phase": "cancelled"')


@dataclass
class Replay:
    """What one replay client saw: a digest of its events, their count, the last one."""

    status: int = 0
    events: int = 0  # `id:` lines, i.e. events
    last_id: int = 0
    bytes: int = 0
    digest: str = ""
    seconds: float = 0.0
    first_byte: float = 0.0
    terminal: bool = False
    errors: list[str] = field(default_factory=list)
    _hash: Any = field(default_factory=hashlib.sha256)
    _tail: bytes = b""
    _last_block: bytes = b""

    def feed(self, chunk: bytes) -> None:
        """Take whole events (up to the last blank line); keep the rest for the next chunk.
        Comment blocks (keepalives) are left out of the digest."""
        self.bytes += len(chunk)
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self._tail = data
            return
        whole, self._tail = data[: cut + 2], data[cut + 2 :]
        if whole.startswith(b":") or b"\n:" in whole:
            blocks = whole.split(b"\n\n")[:-1]
            whole = b"".join(b + b"\n\n" for b in blocks if not b.startswith(b":"))
            if not whole:
                return
        self._hash.update(whole)
        self.events += whole.count(b"\nid: ") + whole.startswith(b"id: ")
        start = whole.rfind(b"\n\n", 0, len(whole) - 2)
        self._last_block = whole[start + 2 :] if start >= 0 else whole

    def finish(self) -> None:
        self.digest = self._hash.hexdigest()
        if self._tail.strip():
            self.errors.append(f"stream ended inside an event: {self._tail[:80]!r}")
        m = ID_LINE.search(self._last_block)
        self.last_id = int(m.group(1)) if m else 0
        self.terminal = any(t in self._last_block for t in TERMINAL)
        if not self.terminal:
            self.errors.append(f"last event is not terminal: {self._last_block[:120]!r}")

    def result(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def _request(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.0", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, the body bytes that came with the head)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError(f"connection closed in the response head: {head[:200]!r}")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), rest


async def replay_one(host: str, port: int, path: str, headers: dict[str, str]) -> Replay:
    replay = Replay()
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        writer.write(_request(host, port, path, headers))
        replay.status, rest = await _response_head(reader)
        replay.first_byte = time.perf_counter() - t0
        if replay.status != 200:
            replay.errors.append(f"status {replay.status}: {rest[:200]!r}")
            return replay
        replay.feed(rest)
        while chunk := await reader.read(1 << 18):
            replay.feed(chunk)
        replay.finish()
    except (OSError, ValueError) as e:
        replay.errors.append(f"{type(e).__name__}: {e}")
    finally:
        replay.seconds = time.perf_counter() - t0
        writer.close()
    return replay


async def replay_clients(
    host: str, port: int, path: str, headers: dict[str, str], n: int
) -> list[Replay]:
    return list(await asyncio.gather(*(replay_one(host, port, path, headers) for _ in range(n))))


async def _get(host: str, port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_request(host, port, path, {}))
        status, _ = await _response_head(reader)
        while await reader.read(65536):
            pass
        return status
    finally:
        writer.close()


@dataclass
class Samples:
    """`GET health` samples: (scheduled offset s, latency s, lateness s); failures."""

    points: list[tuple[float, float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def latencies(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        return [lat for t, lat, _ in self.points if start <= t < end]


async def poll_health(
    host: str, port: int, path: str, interval: float, stop: asyncio.Event, t0: float
) -> Samples:
    """Open-loop polling (see the module doc) from `t0` (a `time.perf_counter()`) until
    `stop` is set; then wait for the requests still out."""
    samples = Samples()

    async def one(offset: float) -> None:
        sent = time.perf_counter()
        try:
            status = await _get(host, port, path)
        except OSError as e:
            samples.failures.append(f"{type(e).__name__}: {e}")
            return
        done = time.perf_counter()
        if status != 200:
            samples.failures.append(f"status {status}")
        samples.points.append((offset, done - sent, sent - t0 - offset))

    tasks: list[asyncio.Task[None]] = []
    k = 0
    while not stop.is_set():
        offset = k * interval
        delay = t0 + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(offset)))
        k += 1
    await asyncio.gather(*tasks)
    samples.points.sort()
    return samples


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _clients_main(argv: list[str]) -> int:
    host, port, path, header, value, n = argv
    results = asyncio.run(replay_clients(host, int(port), path, {header: value}, int(n)))
    print(json.dumps([r.result() for r in results]))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["clients"]:
        sys.exit(__doc__)
    sys.exit(_clients_main(sys.argv[2:]))
