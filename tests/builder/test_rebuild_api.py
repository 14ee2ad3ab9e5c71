"""Rebuild on demand through the HTTP API (fake executor, real service subprocess): who may,
how often, what the cache answers while a rebuild runs, and the queue cap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.builder import BuilderProcess
from tests.support.gitserver import GitServer


@pytest.fixture
def slow_builder(tmp_path: Path) -> Iterator[BuilderProcess]:
    svc = BuilderProcess(
        tmp_path / "builder", executor="fake",
        config="c.FakeExecutor.line_delay = 0.1\nc.BuilderApp.max_queued_per_user = 2\n",
    )  # fmt: skip
    svc.start()
    yield svc
    svc.stop()


def test_rebuild_rules_and_cache_while_running(
    slow_builder: BuilderProcess, git_server: GitServer
) -> None:
    svc = slow_builder
    repo = git_server.create("slow-env")
    first = svc.post("alice", repo.url).json()
    assert svc.events(first["id"])[-1]["phase"] == "built"

    refused = svc.post("bob", repo.url, rebuild=True)
    assert refused.status_code == 403 and refused.json()["field"] == "rebuild"
    assert "admin" in refused.json()["message"]
    bad = svc.post("alice", repo.url, rebuild="yes")
    assert bad.status_code == 400 and bad.json()["field"] == "rebuild"

    r = svc.post("alice", repo.url, rebuild=True)
    assert r.status_code == 202, r.text
    rebuild = r.json()
    assert rebuild["id"] != first["id"] and rebuild["image"] == first["image"]
    assert rebuild["rebuild"] is True and rebuild["rebuild_of"] == first["id"]

    # while it runs: a normal request is answered from the cache (the old image), not joined
    hit = svc.post("bob", repo.url)
    assert hit.status_code == 200 and hit.json()["cache_hit"] is True, hit.text
    assert svc.get(f"api/builds/{first['id']}").json()["status"] == "built"
    # an admin's identical rebuild joins the running one; the owner's second one is too soon
    joined = svc.post("admin", repo.url, rebuild=True)
    assert joined.status_code == 202 and joined.json()["id"] == rebuild["id"]
    again = svc.post("alice", repo.url, rebuild=True)
    assert again.status_code == 429, again.text
    assert "rebuild_interval = 300" in again.json()["message"]
    assert 250 < int(again.headers["Retry-After"]) <= 300

    events = svc.events(rebuild["id"])
    assert events[-1]["phase"] == "built"
    assert any("without the layer cache" in e["message"] for e in events)
    record = svc.get(f"api/builds/{rebuild['id']}").json()
    assert set(record["users"]) == {"alice", "admin"}
    # bob asked for the image (a cache hit): now he is an owner and may rebuild it
    assert svc.post("bob", repo.url, rebuild=True).status_code == 202


def test_rebuild_counts_towards_the_queue_cap(
    slow_builder: BuilderProcess, git_server: GitServer
) -> None:
    svc = slow_builder
    repos = [git_server.create(f"quick-{i}") for i in range(3)]
    for repo in repos:
        assert svc.events(svc.post("alice", repo.url).json()["id"])[-1]["phase"] == "built"
    assert svc.post("alice", repos[0].url, rebuild=True).status_code == 202
    assert svc.post("alice", repos[1].url, rebuild=True).status_code == 202
    capped = svc.post("alice", repos[2].url, rebuild=True)
    assert capped.status_code == 429, capped.text
    assert "max_queued_per_user = 2" in capped.json()["message"]
