"""`ChildProcesses`: `fancy-env up` stops what it started (even orphans of its tree), nothing else.

Real processes, no hub: a small driver plays `up` in its own Python process (the subreaper
setting must not touch pytest). It starts a "hub" in a new session that leaves an orphan in
yet another session (what a killed hub leaves: a proxy started with start_new_session), and
stops them. Meanwhile the test runs a `tail -f` of a file in the state directory and a shell
working there, as a user would: they are not the driver's and must survive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

DRIVER = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    from fancy_env.up import ChildProcesses

    children = ChildProcesses()
    # the "hub": its own session; its subshell leaves an orphan in another session, then the
    # hub itself is killed (as after a stop timeout) so the orphan has no parent in our tree
    hub = subprocess.Popen(
        ["sh", "-c", "(setsid sleep 301 &) ; exec sleep 302"], start_new_session=True
    )
    for _ in range(100):
        orphans = [p for p in children.me.children() if p.pid != hub.pid]
        if orphans:
            break
        time.sleep(0.05)
    children.record(frozenset({hub.pid}))
    os.killpg(hub.pid, signal.SIGKILL)
    hub.wait()
    pids = sorted(p.pid for p in children.alive())
    signalled, killed = children.stop(grace=5)
    left = [p for p in pids if os.path.exists(f"/proc/{p}")]
    print(json.dumps({"subreaper": children.subreaper, "orphans": [p.pid for p in orphans],
                      "pids": pids, "signalled": signalled, "killed": killed, "left": left}))
    """
)


@pytest.fixture
def bystanders(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    state = tmp_path / "state"
    state.mkdir()
    (state / "jupyterhub.log").write_text("hub log\n")
    procs = [
        subprocess.Popen(["tail", "-f", str(state / "jupyterhub.log")]),
        subprocess.Popen(["sh", "-c", f"cd {state} && sleep 600"]),
    ]
    yield procs
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_stops_its_tree_and_orphans_and_spares_bystanders(
    bystanders: list[subprocess.Popen[bytes]],
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["subreaper"] is True
    # the orphan (`setsid sleep 301`) was re-parented to the driver, then stopped
    assert len(result["orphans"]) == 1 and result["pids"] == result["orphans"]
    assert (result["signalled"], result["killed"], result["left"]) == (1, 0, [])
    for proc in bystanders:
        assert proc.poll() is None, f"{proc.args} was signalled"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert all(c.status() != psutil.STATUS_ZOMBIE for c in children)
