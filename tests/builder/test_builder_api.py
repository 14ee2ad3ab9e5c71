"""The build service's HTTP API with the fake executor, run as a real subprocess."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer, git
from tests.support.net import wait_for


def metric(svc: BuilderProcess, name: str) -> float:
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", svc.get("metrics").text, re.M)
    return float(m.group(1)) if m else 0.0


def status(svc: BuilderProcess, build_id: str) -> str:
    return str(svc.get(f"api/builds/{build_id}", user="admin").json()["status"])


def test_health_metrics_and_auth(builder: BuilderProcess) -> None:
    assert requests.get(builder.url + "health", timeout=5).json()["status"] == "ok"
    assert "fancy_env_builds_total" in requests.get(builder.url + "metrics", timeout=5).text
    r = requests.post(builder.url + "api/builds", json={"repo": "o/r"}, timeout=5)
    assert r.status_code == 403 and "authentication required" in r.json()["message"]
    r = requests.get(builder.url + "api/builds", headers={"X-Fancy-Env-Ticket": "x.y"}, timeout=5)
    assert r.status_code == 403 and "ticket refused" in r.json()["message"]
    r = requests.post(builder.url + "api/builds", data="{nope", headers=builder.headers("a"),
                      timeout=5)  # fmt: skip
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = builder.get("api/builds/0123456789abcdef")
    assert r.status_code == 404 and r.json()["field"] == "id"


def test_build_events_cache_and_history(builder: BuilderProcess, git_server: GitServer) -> None:
    repo = git_server.create("plain")
    r = builder.post("alice", repo.url)
    assert r.status_code == 202, r.text
    build = r.json()
    messages = list(builder.stream(build["id"]))
    events = [m["data"] for m in messages if "data" in m]
    assert [m["id"] for m in messages if "id" in m] == [e["seq"] for e in events]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    phases = [e["phase"] for e in events]
    assert phases[0] == "resolving" and phases[-1] == "built"
    assert {"fetching", "building", "pushing"} <= set(phases)
    assert events[-1]["image"] == build["image"]

    hit = builder.post("bob", repo.url)
    assert hit.status_code == 200 and hit.json()["cache_hit"] is True
    assert builder.events(hit.json()["id"], user="bob")[-1]["phase"] == "built"

    mine = builder.get("api/builds", user="alice", params={"mine": "1"}).json()["builds"]
    assert [b["id"] for b in mine] == [build["id"]]
    assert builder.get("api/builds", user="alice", params={"user": "bob"}).status_code == 403
    shorter = repo.url.replace("http://", "HTTP://") + "/"  # normalised before filtering
    everyone = builder.get("api/builds", user="admin", params={"repo": shorter}).json()
    assert {b["user"] for b in everyone["builds"]} == {"alice", "bob"}
    by_user = builder.get("api/builds", user="admin", params={"user": "bob"}).json()["builds"]
    assert [b["id"] for b in by_user] == [hit.json()["id"]]


def test_identical_requests_share_one_build(builder: BuilderProcess, git_server: GitServer) -> None:
    repo = git_server.create("slow-shared")
    runs = metric(builder, "fancy_env_executor_runs_total")
    users = [f"user{i % 4}" for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda u: builder.post(u, repo.url).json(), users))
    assert len({a["id"] for a in answers}) == 1
    build_id = answers[0]["id"]
    assert all(builder.events(build_id, user=u)[-1]["phase"] == "built" for u in set(users))
    assert metric(builder, "fancy_env_executor_runs_total") == runs + 1
    assert set(builder.get(f"api/builds/{build_id}", user="user3").json()["users"]) == set(users)


def test_cancel_owner_admin_and_queued(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(tmp_path / "b", config="c.BuilderApp.max_concurrent_builds = 1\n")
    svc.start()
    try:
        running = svc.post("alice", git_server.create("slow-a").url).json()
        queued = svc.post("bob", git_server.create("slow-b").url).json()
        assert queued["status"] == "queued"
        assert svc.get(f"api/builds/{queued['id']}", user="bob").json()["queue_position"] == 1
        assert svc.delete(queued["id"], user="alice").status_code == 403
        assert svc.delete(queued["id"], user="bob").status_code == 202
        assert status(svc, queued["id"]) == "cancelled"
        assert svc.delete(running["id"], user="admin").status_code == 202
        wait_for(lambda: status(svc, running["id"]) == "cancelled", timeout=10, what="cancel")
        last = svc.events(running["id"])[-1]
        assert last["phase"] == "cancelled" and last["message"] == "cancelled by admin"
    finally:
        svc.stop()


def test_fair_queue_between_users(tmp_path: Path, git_server: GitServer) -> None:
    config = (
        "c.BuilderApp.max_concurrent_builds = 1\nc.BuilderApp.max_builds_per_user = 3\n"
        "c.FakeExecutor.line_delay = 0.02\n"
    )
    svc = BuilderProcess(tmp_path / "b", config=config)
    svc.start()
    try:
        urls = [git_server.create(f"slow-{name}").url for name in ("a0", "a1", "a2", "b0")]
        alice = [svc.post("alice", url).json() for url in urls[:3]]
        bob = svc.post("bob", urls[3]).json()
        for b in [*alice, bob]:
            assert svc.events(b["id"], user="admin")[-1]["phase"] == "built"
        started = {b["id"]: svc.get(f"api/builds/{b['id']}").json()["started"] for b in alice}
        bob_started = svc.get(f"api/builds/{bob['id']}", user="bob").json()["started"]
        assert started[alice[0]["id"]] < bob_started < started[alice[1]["id"]]
    finally:
        svc.stop()


def test_keepalive_and_silence_timeout(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(tmp_path / "b", config="c.BuilderApp.silence_timeout = 2\n")
    svc.start()
    try:
        build = svc.post("alice", git_server.create("silent").url).json()
        messages = list(svc.stream(build["id"]))
        assert {"comment": "keepalive"} in messages
        last = messages[-1]["data"]
        assert last["phase"] == "failed" and "no log output for 2s" in last["message"]
        assert svc.get(f"api/builds/{build['id']}").json()["reason"] == last["message"]
    finally:
        svc.stop()


def test_total_timeout(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(tmp_path / "b", config="c.BuilderApp.build_timeout = 1\n")
    svc.start()
    try:
        build = svc.post("alice", git_server.create("slow-timeout").url).json()
        last = svc.events(build["id"])[-1]
        assert last["phase"] == "failed" and "timed out after 1s" in last["message"]
    finally:
        svc.stop()


def test_failed_build_keeps_reason(builder: BuilderProcess, git_server: GitServer) -> None:
    build = builder.post("alice", git_server.create("will-fail").url).json()
    last = builder.events(build["id"])[-1]
    assert last["phase"] == "failed" and "fake build failed" in last["message"]


def test_resume_and_disconnect(builder: BuilderProcess, git_server: GitServer) -> None:
    build = builder.post("alice", git_server.create("slow-resume").url).json()
    head: list[dict[str, Any]] = []
    for m in builder.stream(build["id"]):
        if "data" in m:
            head.append(m["data"])
            if len(head) == 5:
                break
    time.sleep(0.5)  # the build goes on without a watcher
    tail = builder.events(build["id"], last_event_id=5)
    whole = builder.events(build["id"])
    assert whole[-1]["phase"] == "built"
    assert head + tail == whole
    assert builder.events(build["id"], last_event_id=len(whole)) == []
    r = builder.get(f"api/builds/{build['id']}/events", headers={"Last-Event-ID": "x"})
    assert r.status_code == 400 and r.json()["field"] == "Last-Event-ID"


def test_persistence_across_restart(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(tmp_path / "b", config="c.BuilderApp.max_concurrent_builds = 1\n")
    svc.start()
    try:
        done = svc.post("alice", git_server.create("first").url).json()
        finished = svc.events(done["id"])
        running = svc.post("alice", git_server.create("slow-running").url).json()
        queued = svc.post("bob", git_server.create("later").url).json()
        assert queued["status"] == "queued"
        wait_for(lambda: status(svc, running["id"]) == "building", timeout=10, what="building")
        svc.kill9()
        svc.start()
        assert svc.events(done["id"]) == finished
        record = svc.get(f"api/builds/{running['id']}").json()
        assert (record["status"], record["reason"]) == ("failed", "interrupted by restart")
        events = svc.events(running["id"])
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["message"] == "interrupted by restart"
        requeued = svc.events(queued["id"], user="bob")
        assert requeued[-1]["phase"] == "built"
        assert any("restart" in e["message"] for e in requeued)
    finally:
        svc.stop()


@pytest.mark.parametrize("path", ["api/builds/zz", "api/nothing", "../../elsewhere"])
def test_unknown_paths(builder: BuilderProcess, path: str) -> None:
    r = builder.get(path)
    assert r.status_code == 404 and r.json()["status"] == 404


def test_other_users_builds_are_private(builder: BuilderProcess, git_server: GitServer) -> None:
    build = builder.post("alice", git_server.create("mine").url).json()
    for path in (f"api/builds/{build['id']}", f"api/builds/{build['id']}/events"):
        r = builder.get(path, user="mallory")
        assert r.status_code == 403 and "another user" in r.json()["message"]
        assert builder.get(path, user="admin").status_code == 200


def test_graceful_stop_marks_running_builds(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(tmp_path / "b")
    svc.start()
    try:
        build = svc.post("alice", git_server.create("slow-stopped").url).json()
        wait_for(lambda: status(svc, build["id"]) == "building", timeout=10, what="building")
        svc.stop()
        svc.start()
        record = svc.get(f"api/builds/{build['id']}").json()
        assert (record["status"], record["reason"]) == ("failed", "interrupted by restart")
    finally:
        svc.stop()


def test_lines_seen_before_kill9_are_kept(tmp_path: Path, git_server: GitServer) -> None:
    """A watcher only sees stored lines, so a crash never reuses an id it has seen."""
    svc = BuilderProcess(tmp_path / "b", config="c.FakeExecutor.line_delay = 0.005\n")
    svc.start()
    try:
        build = svc.post("alice", git_server.create("slow-crash").url).json()
        seen: list[dict[str, Any]] = []
        for m in svc.stream(build["id"]):
            if "data" in m:
                seen.append(m["data"])
                if len(seen) == 20:
                    break
        svc.kill9()  # lines keep coming until the kill; some were never shown
        svc.start()
        events = svc.events(build["id"])
        assert events[: len(seen)] == seen
        assert events[-1]["message"] == "interrupted by restart"
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finally:
        svc.stop()


def test_git_ref_resolver(tmp_path: Path, git_server: GitServer) -> None:
    svc = BuilderProcess(tmp_path / "b", config='c.BuilderApp.ref_resolver = "git"\n')
    svc.start()
    try:
        repo = git_server.create("via-git")
        repo.tag("v1")
        build = svc.post("alice", repo.url, "v1").json()
        assert build["commit"] == git("rev-parse", "v1", cwd=repo.work)
        assert svc.events(build["id"])[-1]["phase"] == "built"
        r = svc.post("alice", repo.url, "missing")
        assert r.status_code == 400 and r.json()["field"] == "ref"
    finally:
        svc.stop()
