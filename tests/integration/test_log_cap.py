"""A real build printing 400,000 lines: its stored log stays under the cap, and 20 clients
replaying it at once do not hold up `GET health`.

Real Git remote on loopback, real repo2docker and Docker engine, the build service as a
subprocess with its default limits (`max_log_lines` 20,000, `max_log_bytes` 4 MiB). The 20
replaying clients are `curl` processes, so the test's own interpreter only polls health.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fancy_env.tickets import HEADER
from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LINES = 400_000
CAP_LINES = 20_000  # BuilderApp.max_log_lines default
CAP_BYTES = 4 * 1024 * 1024  # BuilderApp.max_log_bytes default
WATCHERS = 20
USERS = ("alice", "admin")
ROUNDS = 3
IDLE_HEALTH_MS = 5.0  # a generous p50 of `GET health` at rest on an idle machine


@pytest.fixture
def docker_builder(tmp_path: Path, docker_engine: str) -> Iterator[BuilderProcess]:
    svc = BuilderProcess(tmp_path / "builder", executor="docker")
    svc.start()
    yield svc
    svc.stop()


def db_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.glob("builds.sqlite*"))


def poll_health(svc: BuilderProcess, until: list[subprocess.Popen[bytes]]) -> list[float]:
    """Answer times (ms) of `GET health`, polled every 10 ms while the clients run."""
    times = []
    with requests.Session() as s:
        while any(p.poll() is None for p in until) or len(times) < 50:
            t0 = time.perf_counter()
            r = s.get(svc.url + "health", timeout=10)
            times.append(1000 * (time.perf_counter() - t0))
            assert r.status_code == 200
            time.sleep(0.01)
    return times


def replay_clients(svc: BuilderProcess, user: str, url: str, out: Path) -> subprocess.Popen[bytes]:
    """One curl process replaying the log on WATCHERS / 2 parallel connections."""
    out.mkdir()
    args = ["curl", "-sS", "-Z", "--parallel-immediate", "--parallel-max", "10", "--max-time",
            "300", "-H", f"{HEADER}: {svc.headers(user)[HEADER]}"]  # fmt: skip
    for i in range(WATCHERS // len(USERS)):
        args += ["-o", str(out / f"{i}.sse"), url]
    return subprocess.Popen(args, stderr=subprocess.DEVNULL)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_huge_log_is_capped_and_replays_do_not_block(
    docker_builder: BuilderProcess, git_server: GitServer, docker_engine: str, tmp_path: Path
) -> None:
    svc = docker_builder
    nonce = uuid.uuid4().hex  # no layer cache: the step must really print
    dockerfile = f"FROM {docker_engine}\nRUN echo {nonce} && seq {LINES}\n"
    files = {"Dockerfile": dockerfile, "README.md": "chatty\n"}
    repo = git_server.create("chatty", files)
    before = db_bytes(svc.state)
    build = svc.post("alice", repo.url).json()
    t0 = time.monotonic()
    events = svc.events(build["id"], timeout=900)
    build_seconds = time.monotonic() - t0
    assert events[-1]["phase"] == "built", events[-5:]
    assert events[-1]["image"] == build["image"]
    record = svc.get(f"api/builds/{build['id']}").json()
    assert record["status"] == "built" and record["log_truncated"] is True

    # the cut: one line saying so, nothing of the output after it, the phases and the result
    cuts = [e for e in events if e["message"].startswith("Log cut")]
    assert len(cuts) == 1 and f"after {CAP_LINES} lines" in cuts[0]["message"], cuts
    after = events[events.index(cuts[0]) + 1 :]
    assert not [e for e in after if re.fullmatch(r"[0-9\s]+", e["message"])], "output after cut"
    # one event per line (the engine hands over 32 KiB chunks, which also split a line at
    # each chunk boundary: hence "about")
    numbers = [e["message"] for e in events if e["message"].isdigit()]
    assert numbers[:3] == ["1", "2", "3"] and CAP_LINES - 100 < len(numbers) < CAP_LINES
    assert {"pushing", "built"} <= {e["phase"] for e in after}
    assert str(LINES) not in {e["message"].strip() for e in events}

    # what is stored: under the cap, and the database grew by about that much, not by 400k
    con = sqlite3.connect(svc.state / "builds.sqlite")
    count, text = con.execute(
        "SELECT count(*), sum(length(message)) FROM log_lines WHERE build_id = ?", (build["id"],)
    ).fetchone()
    con.close()
    assert count == len(events) and count <= CAP_LINES + 50
    assert text <= CAP_BYTES + 50 * 1024
    grown = db_bytes(svc.state) - before
    assert grown < 8 * 1024 * 1024, f"database grew by {grown} bytes"

    # 20 clients replay the finished log at once, three rounds, while health is polled:
    # two curl processes of 10 parallel transfers (alice and an admin: max_streams_per_user
    # is 10), so that the clients cost little CPU besides the service's
    rest = poll_health(svc, [])
    out = tmp_path / "replays"
    out.mkdir()
    url = svc.url + f"api/builds/{build['id']}/events"
    busy: list[float] = []
    t0 = time.monotonic()
    for round_ in range(ROUNDS):
        clients = [replay_clients(svc, user, url, out / f"{round_}-{user}") for user in USERS]
        busy += poll_health(svc, clients)
        assert [c.wait() for c in clients] == [0, 0]
    replay_seconds = (time.monotonic() - t0) / ROUNDS
    bodies = sorted(out.glob("*/*.sse"))
    assert len(bodies) == ROUNDS * WATCHERS
    for path in bodies:
        body = path.read_text()
        assert body.count("\nid: ") == len(events), path
        assert '"phase": "built"' in body.rsplit("id: ", 1)[1]
    print(
        f"\nbuild {build_seconds:.1f}s, {count} stored lines, db +{grown / 1e6:.1f} MB; "
        f"{WATCHERS} replays {replay_seconds:.2f}s per round; health at rest p50 "
        f"{percentile(rest, 0.5):.1f} ms, during replays p50 {percentile(busy, 0.5):.1f} "
        f"p99 {percentile(busy, 0.99):.1f} max {max(busy):.1f} ms over {len(busy)} polls; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    # the goal is 100 ms on an idle machine (health answers in 1-3 ms there at rest); on a
    # machine busy with other work, where health is slower at rest too, the bound grows in
    # proportion (printed above, so a run shows both)
    slowdown = max(1.0, percentile(rest, 0.5) / IDLE_HEALTH_MS)
    assert percentile(busy, 0.99) < 100 * slowdown, (slowdown, sorted(busy)[-10:])
