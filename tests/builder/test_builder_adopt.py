"""Adoption after a restart: the service (Kubernetes executor) is killed mid-build and the
next process attaches to the still-running build pod, without losing or repeating a line.
The Kubernetes API is the fake one from tests/support/fake_k8s.py, run as its own process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.builder import ROOT, BuilderProcess
from tests.support.gitserver import GitServer
from tests.support.net import free_port, wait_for


@pytest.fixture
def fake_api() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_k8s", "--port", str(port),
         "--lines", "30", "--delay", "0.1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(url + "/api/v1/namespaces/ns/pods/x", timeout=1).status_code
             == 404, what="fake kubernetes API")  # fmt: skip
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_kill9_mid_build_adopts_the_build_pod(
    tmp_path: Path, git_server: GitServer, fake_api: str
) -> None:
    config = f"""
c.KubernetesExecutor.api_url = {fake_api!r}
c.KubernetesExecutor.namespace = "ns"
c.KubernetesExecutor.poll_interval = 0.1
"""
    svc = BuilderProcess(tmp_path / "b", executor="kubernetes", config=config)
    svc.start()
    try:
        build = svc.post("alice", git_server.create("adopted").url).json()
        seen = []
        for m in svc.stream(build["id"]):
            if "data" in m:
                seen.append(m["data"])
                if "Step 5/30" in m["data"]["message"]:
                    break
        svc.kill9()
        svc.start()
        events = svc.events(build["id"], timeout=60)
        assert events[-1]["phase"] == "built", events[-3:]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        steps = [e["message"] for e in events if e["message"].startswith("Step ")]
        assert steps == [f"Step {i}/30 : RUN fake" for i in range(1, 31)]
        assert any("Adopted" in e["message"] for e in events)
        record = svc.get(f"api/builds/{build['id']}").json()
        assert record["status"] == "built" and record["reason"] == ""
    finally:
        svc.stop()
