"""The build service's limits through its HTTP API (real subprocess, fake executor).

The fake executor stands in for repo2docker here because these limits live in the service
(queue, log store, streams, request parsing), not in the build; the real-build version of the
log cap is tests/integration/test_log_cap.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.support import db
from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer
from tests.support.net import wait_for

pytestmark = pytest.mark.slow


def service(tmp_path: Path, config: str = "") -> BuilderProcess:
    return BuilderProcess(tmp_path / "builder", executor="fake", config=config).start()


@pytest.fixture
def slow_builder(tmp_path: Path) -> Iterator[BuilderProcess]:
    """Builds of `slow-*` repositories take about 90 s (30 lines per phase, 1.5 s apart):
    far longer than the test, so none ends on its own and frees a queue slot under load."""
    svc = service(tmp_path, "c.FakeExecutor.line_delay = 1.5\n")
    yield svc
    svc.stop()


def stored_lines(svc: BuilderProcess, build_id: str) -> list[tuple[int, str, str]]:
    """The stored log of a build, read from the service's database (SQLite or PostgreSQL)."""
    engine = create_engine(db.url_for(svc.state, "builds.sqlite"))
    try:
        q = text("SELECT seq, phase, message FROM log_lines WHERE build_id = :b ORDER BY seq")
        with engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(q, {"b": build_id})]
    finally:
        engine.dispose()


def test_queue_share_per_user(slow_builder: BuilderProcess, git_server: GitServer) -> None:
    svc = slow_builder
    repos = [git_server.create(f"slow-{i}").url for i in range(30)]
    plain = git_server.create("plain").url
    warm = svc.post("bob", plain)
    assert warm.status_code == 202
    assert svc.events(warm.json()["id"], user="bob")[-1]["phase"] == "built"

    with ThreadPoolExecutor(30) as pool:  # all at once: the count must not race
        answers = list(pool.map(lambda url: svc.post("alice", url), repos))
    accepted = [r for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code == 429]
    assert len(accepted) == 5, [r.status_code for r in answers]
    assert len(refused) == 25
    for r in refused:
        assert r.headers["Retry-After"] == "30"
        body = r.json()
        assert body["status"] == 429 and "max_queued_per_user = 5" in body["message"]

    # joining her own build in progress, or a cached image, does not count
    first = accepted[0].json()
    again = svc.post("alice", first["repo"])
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    cached = svc.post("alice", plain)
    assert cached.status_code == 200 and cached.json()["cache_hit"] is True
    # another user still gets through, and so does alice once she cancels one
    assert svc.post("carol", repos[0]).status_code in (200, 202)
    assert svc.post("carol", git_server.create("slow-carol").url).status_code == 202
    unaccepted = [url for url, r in zip(repos, answers, strict=True) if r.status_code == 429]
    assert svc.delete(first["id"]).status_code == 202
    wait_for(
        lambda: svc.get(f"api/builds/{first['id']}").json()["status"] == "cancelled",
        timeout=10, what="the cancelled build to end",
    )  # fmt: skip
    assert svc.post("alice", unaccepted[0]).status_code == 202
    sixth = svc.post("alice", unaccepted[1])
    states = {r.json()["id"]: svc.get(f"api/builds/{r.json()['id']}").json()["status"]
              for r in accepted}  # fmt: skip
    assert sixth.status_code == 429, (sixth.text, states)  # which of hers ended, if one did
    metrics = svc.get("metrics").text
    assert 'fancy_env_requests_refused_total{limit="queue_share"} 26.0' in metrics


@pytest.mark.parametrize(
    ("max_lines", "max_bytes", "words"),
    [(100, 0, "after 100 lines"), (0, 4000, "max_log_bytes = 4000")],
)
def test_log_cap(
    tmp_path: Path, git_server: GitServer, max_lines: int, max_bytes: int, words: str
) -> None:
    svc = service(
        tmp_path,
        f"c.BuilderApp.max_log_lines = {max_lines}\nc.BuilderApp.max_log_bytes = {max_bytes}\n"
        "c.FakeExecutor.lines_per_phase = 300\nc.FakeExecutor.line_delay = 0\n",
    )
    try:
        repo = git_server.create("chatty").url
        build = svc.post("alice", repo).json()
        events = svc.events(build["id"])
        record = svc.get(f"api/builds/{build['id']}").json()
        stored = stored_lines(svc, build["id"])
    finally:
        svc.stop()
    assert events[-1]["phase"] == "built" and events[-1]["image"] == build["image"]
    assert record["status"] == "built" and record["log_truncated"] is True
    cuts = [e for e in events if e["message"].startswith("Log cut")]
    assert len(cuts) == 1 and words in cuts[0]["message"]
    assert "later lines are not stored" in cuts[0]["message"]
    # the phases after the cut are still there, and nothing of the output after it
    after = events[events.index(cuts[0]) + 1 :]
    assert {"building", "pushing", "built"} <= {e["phase"] for e in after}
    assert not [e for e in after if "fake build line" in e["message"]]
    # watchers saw exactly what is stored
    assert [(e["seq"], e["phase"], e["message"]) for e in events] == stored
    output = [m for _, _, m in stored if "line " in m]
    assert len(output) <= (max_lines or 10**9) and sum(map(len, output)) <= (max_bytes or 10**9)
    assert len(output) >= (max_lines or 1) - 1 and sum(map(len, output)) > max_bytes - 100
    # replaying the finished log from the database gives the same events
    assert svc.start().events(build["id"]) == events
    svc.stop()


def test_short_log_is_not_flagged(builder: BuilderProcess, git_server: GitServer) -> None:
    build = builder.post("alice", git_server.create("short").url).json()
    assert builder.events(build["id"])[-1]["phase"] == "built"
    record = builder.get(f"api/builds/{build['id']}").json()
    assert record["log_truncated"] is False
    assert not any(e["message"].startswith("Log cut") for e in builder.events(build["id"]))


def open_stream(svc: BuilderProcess, build_id: str, user: str) -> requests.Response:
    r = requests.get(
        svc.url + f"api/builds/{build_id}/events", headers=svc.headers(user), stream=True,
        timeout=30,
    )  # fmt: skip
    if r.status_code == 200:  # the handler holds the stream once its `retry:` line is out
        assert r.raw.read(6) == b"retry:"  # (not iter_lines: dropping it closes the stream)
    return r


def test_stream_cap_per_user(builder: BuilderProcess, git_server: GitServer) -> None:
    svc = builder
    silent = git_server.create("silent-env").url  # goes silent: its stream stays open
    build_id = svc.post("alice", silent).json()["id"]
    assert svc.post("bob", silent).json()["id"] == build_id  # bob joins: he may watch too
    with ExitStack() as stack:
        streams = [open_stream(svc, build_id, "alice") for _ in range(10)]
        for r in streams:
            stack.callback(r.close)
        assert [r.status_code for r in streams] == [200] * 10
        extra = open_stream(svc, build_id, "alice")
        assert extra.status_code == 429, extra.text
        assert extra.headers["Retry-After"]
        assert "max_streams_per_user = 10" in extra.json()["message"]
        bobs = open_stream(svc, build_id, "bob")
        stack.callback(bobs.close)
        assert bobs.status_code == 200, "another user is not affected"
        streams[0].close()

        def reopened() -> bool:
            r = open_stream(svc, build_id, "alice")
            stack.callback(r.close)
            return r.status_code == 200

        wait_for(reopened, timeout=10, what="a closed stream to free its slot")


DEEP = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (DEEP, 400, "nested 10000 levels deep; at most 32"),
        ('{"repo": ' + "[" * 40 + "]" * 40 + "}", 400, "nested 41 levels deep"),
        ('{"repo": "' + "x" * 70_000 + '"}', 413, "at most 65536 are accepted"),
        ("{nope", 400, "must be JSON"),
        ("[1, 2]", 400, "must be a JSON object"),
        ('{"repo": 5}', 400, "repo: must be a string"),
        ('{"repo": "o/r", "ref": ["main"]}', 400, "must be a string"),
    ],
)
def test_json_body_refusals(builder: BuilderProcess, data: str, status: int, words: str) -> None:
    r = requests.post(
        builder.url + "api/builds", data=data, headers=builder.headers("alice"), timeout=30
    )
    assert r.status_code == status, r.text
    body = r.json()
    assert words in body["message"] or words in f"{body.get('field')}: {body['message']}"
    assert body.get("field") in ("body", "repo", "ref")
    assert requests.get(builder.url + "health", timeout=5).status_code == 200


def test_body_over_the_server_cap_is_refused_unread(builder: BuilderProcess) -> None:
    """Beyond 16 x max_body_bytes tornado refuses the body before reading it."""
    try:
        r = requests.post(
            builder.url + "api/builds", data=b"x" * (2 << 20), headers=builder.headers("a"),
            timeout=30,
        )  # fmt: skip
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        pass  # a bare 400, then the connection is closed under the client: refused all the same
    else:
        assert r.status_code in (400, 413)
    assert requests.get(builder.url + "health", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"limit": "-1"}, "limit", "from 1 to 1000, not -1"),
        ({"limit": "0"}, "limit", "not 0"),
        ({"limit": "abc"}, "limit", "must be an integer from 1 to 1000"),
        ({"limit": "1000000"}, "limit", "not 1000000"),
        ({"limit": "9" * 40}, "limit", "must be an integer"),
        ({"offset": "-5"}, "offset", "from 0 to 1000000"),
        ({"offset": "x"}, "offset", "must be an integer"),
    ],
)
def test_query_parameter_ranges(
    builder: BuilderProcess, params: dict[str, str], field: str, words: str
) -> None:
    r = builder.get("api/builds", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and words in r.json()["message"]


def test_limit_and_offset_page_the_history(builder: BuilderProcess, git_server: GitServer) -> None:
    ids = []
    for i in range(3):
        build = builder.post("alice", git_server.create(f"page-{i}").url).json()
        builder.events(build["id"])
        ids.append(build["id"])
    newest_first = ids[::-1]

    def page(**params: Any) -> list[str]:
        return [b["id"] for b in builder.get("api/builds", params=params).json()["builds"]]

    assert page(limit=2) == newest_first[:2]
    assert page(limit=2, offset=2) == newest_first[2:]
    assert page(offset=3) == []


OLD_SCHEMA = """
CREATE TABLE builds (
    id VARCHAR(32) NOT NULL, user VARCHAR(255) NOT NULL, repo VARCHAR(2048) NOT NULL,
    ref VARCHAR(255) NOT NULL, subdir VARCHAR(1024) NOT NULL, "commit" VARCHAR(64) NOT NULL,
    image VARCHAR(512) NOT NULL, status VARCHAR(16) NOT NULL, reason TEXT NOT NULL,
    cache_hit BOOLEAN NOT NULL, executor_ref VARCHAR(255) NOT NULL, created FLOAT NOT NULL,
    started FLOAT, finished FLOAT, PRIMARY KEY (id)
);
CREATE INDEX ix_builds_repo ON builds (repo);
CREATE INDEX ix_builds_status ON builds (status);
CREATE INDEX ix_builds_created ON builds (created);
CREATE INDEX ix_builds_image ON builds (image);
CREATE INDEX ix_builds_user ON builds (user);
CREATE TABLE images (
    name VARCHAR(512) NOT NULL, repo VARCHAR(2048) NOT NULL, "commit" VARCHAR(64) NOT NULL,
    build_id VARCHAR(32) NOT NULL, created FLOAT NOT NULL, PRIMARY KEY (name)
);
CREATE TABLE build_users (
    build_id VARCHAR(32) NOT NULL, user VARCHAR(255) NOT NULL, PRIMARY KEY (build_id, user),
    FOREIGN KEY(build_id) REFERENCES builds (id)
);
CREATE TABLE log_lines (
    build_id VARCHAR(32) NOT NULL, seq INTEGER NOT NULL, phase VARCHAR(16) NOT NULL,
    message TEXT NOT NULL, time FLOAT NOT NULL, image VARCHAR(512),
    PRIMARY KEY (build_id, seq), FOREIGN KEY(build_id) REFERENCES builds (id)
);
INSERT INTO builds VALUES ('00000000000000aa', 'alice', 'http://127.0.0.1:1/old.git', '',
    '', 'c0ffee', '127.0.0.1:5000/fancy-env-test/old:c0ffee', 'built', '', 0, '', 1.0, 1.0,
    2.0);
INSERT INTO build_users VALUES ('00000000000000aa', 'alice');
INSERT INTO log_lines VALUES ('00000000000000aa', 1, 'built', 'Built it', 2.0, 'old:c0ffee');
"""


def test_database_of_the_previous_release(tmp_path: Path, git_server: GitServer) -> None:
    """The schema of the release before `log_truncated` (main at 38ea3d8): the column is
    added at start-up, old records read as not truncated, new builds set it."""
    if db.current_backend() != "sqlite":
        pytest.skip("this schema is kept as SQLite DDL; tests/builder/test_migrations.py "
                    "upgrades databases of earlier releases on PostgreSQL too")  # fmt: skip
    state = tmp_path / "builder"
    state.mkdir()
    con = sqlite3.connect(state / "builds.sqlite")
    con.executescript(OLD_SCHEMA)
    con.close()
    svc = service(tmp_path, "c.BuilderApp.max_log_lines = 5\n")
    try:
        old = svc.get("api/builds/00000000000000aa").json()
        assert old["status"] == "built" and old["log_truncated"] is False
        assert [e["message"] for e in svc.events("00000000000000aa")] == ["Built it"]
        build = svc.post("alice", git_server.create("after-upgrade").url).json()
        assert svc.events(build["id"])[-1]["phase"] == "built"
        assert svc.get(f"api/builds/{build['id']}").json()["log_truncated"] is True
        history = svc.get("api/builds").json()["builds"]
        assert {b["id"] for b in history} == {"00000000000000aa", build["id"]}
    finally:
        svc.stop()
    # and a second start on the upgraded file changes nothing
    svc.start()
    try:
        assert svc.get(f"api/builds/{build['id']}").json()["log_truncated"] is True
    finally:
        svc.stop()
