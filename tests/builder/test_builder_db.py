"""The build and link stores on each database (the conftest runs every test on SQLite and on
PostgreSQL): column types and lengths, NUL bytes in logs, and processes sharing one database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from fancy_env.builder.db import Build, Store
from fancy_env.builder.events import BuildEvent
from fancy_env.repos import MAX_REF_LENGTH, MAX_REPO_LENGTH, MAX_SUBDIR_LENGTH
from fancy_env.sharing import links as L
from fancy_env.sharing.store import LinkStore
from tests.support.builder import ROOT
from tests.support.net import wait_for

NOW = 1_800_000_000.123456


def build(build_id: str, **kw: object) -> Build:
    values: dict[str, object] = {"user": "alice", "repo": "https://h/r", "status": "queued"}
    return Build(id=build_id, created=NOW, **{**values, **kw})


def test_types_and_longest_allowed_values(db_url: str) -> None:
    store = Store(db_url)
    repo = "https://h/" + "r" * (MAX_REPO_LENGTH - 10)
    ref, subdir = "b" * MAX_REF_LENGTH, "s" * MAX_SUBDIR_LENGTH
    store.add_build(build("a" * 32, repo=repo, ref=ref, subdir=subdir, commit="c" * 64))
    store.update("a" * 32, status="built", cache_hit=True, started=NOW + 0.5, finished=NOW + 2)
    got = store.get("a" * 32)
    assert got is not None and (got.repo, got.ref, got.subdir) == (repo, ref, subdir)
    assert got.cache_hit is True and got.status == "built"
    assert (got.created, got.started, got.finished) == (NOW, NOW + 0.5, NOW + 2)  # double
    assert store.active() == [] and [b.id for b in store.history(user="alice")] == ["a" * 32]
    assert store.last_seq("a" * 32) == 0 and store.last_seq("nope") == 0
    store.close()


def test_log_lines_with_nul_bytes_are_kept(db_url: str) -> None:
    """A build's output may hold NUL bytes; PostgreSQL text refuses them, so the store writes
    U+FFFD instead (on both databases) rather than losing the log or the build."""
    store = Store(db_url)
    first = BuildEvent("b1", 1, "fetching", "clone\x00d", NOW, None)
    store.add_build(build("b1"), lines=[first])
    store.add_lines(BuildEvent("b1", i, "building", f"line {i}\x00", NOW + i, None)
                    for i in range(2, 6))  # fmt: skip
    store.update("b1", status="failed", reason="exit 1: \x00oops")
    lines = store.lines("b1", after=1)
    assert [e.seq for e in lines] == [2, 3, 4, 5] and store.last_seq("b1") == 5
    assert store.lines("b1")[0].message == "clone\ufffdd"
    assert lines[-1].message == "line 5\ufffd"
    got = store.get("b1")
    assert got is not None and got.reason == "exit 1: \ufffdoops"
    store.close()


RACE = """
import sys, time
from pathlib import Path
from fancy_env.builder.db import Store
from fancy_env.sharing.store import LinkStore
url, go, launches = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
go.with_name(f"ready-{sys.argv[4]}").touch()
while not go.exists():
    time.sleep(0.002)
Store(url).close()
links = LinkStore(url)
for _ in range(launches):
    links.record_launch("l1", time.time())
"""


def run_together(db_url: str, tmp_path: Path, processes: int, launches: int) -> list[str]:
    """Start `processes` Python processes that, once all are ready, create both schemas at
    the same moment and count `launches` launches each of link l1; the stderr of those that
    failed."""
    go = tmp_path / "go"
    cmd = [sys.executable, "-c", textwrap.dedent(RACE), db_url, str(go), str(launches)]
    procs = [
        subprocess.Popen([*cmd, str(i)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for i in range(processes)
    ]
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == processes, timeout=60,
             what="the racing processes")  # fmt: skip
    go.touch()
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            errors.append(err[-2000:])
    return errors


def test_processes_starting_together_on_one_database(db_url: str, tmp_path: Path) -> None:
    """Service processes (replicas, or a restart overlapping the old process) create the
    schema at the same moment, then count launches of one link at the same time: no start
    fails and no launch is lost."""
    LinkStore(db_url).add(L.Link("l1", "h" * 64, "alice", L.LinkSpec("small"), NOW, None))
    assert run_together(db_url, tmp_path, processes=3, launches=30) == []
    assert LinkStore(db_url).launches("l1") == 90
