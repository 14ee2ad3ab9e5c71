"""The build pod's fetch, run for real on this machine against Git remotes on loopback.

No Kubernetes can run here, so the `fetch` init container is run as the kubelet would run
it: its exact `command` list from the manifest, in a directory standing for the checkout
emptyDir mounted at its `workingDir` (mode 0777, as the kubelet makes it), with only PATH
in the environment, as its `runAsUser` (65534) when the tests run as root. The program
needs no fancy_env (`python3 -I`: checked below). The attacks are the one-machine ones of
tests/builder/test_checkout.py: a symlinked subdir, a clone-time 302, a submodule.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fancy_env.builder.executors.base import BuildJob
from fancy_env.builder.executors.kube import KubernetesExecutor
from fancy_env.builder.executors.kube_fetch import WORK_DIR
from fancy_env.repos import RepoPolicy
from tests.support.canary import Canary
from tests.support.gitserver import GitServer, git

PIN_HOST = "fetch-pin.test"  # never resolvable: a clone through it works only when pinned
POLICY = RepoPolicy(
    allowed_http_hosts=frozenset({"127.0.0.1", PIN_HOST}),
    allowed_private_hosts=frozenset({"127.0.0.1", PIN_HOST}),
)


async def loopback(host: str, port: int) -> list[str]:
    assert host in ("127.0.0.1", PIN_HOST), host
    return ["127.0.0.1"]


async def pod_for(url: str, commit: str, subdir: str = "") -> dict[str, Any]:
    """The build pod the executor would create (approval and pin included)."""
    executor = KubernetesExecutor(namespace="ns", fetch_timeout=60)
    executor.repo_policy = POLICY
    executor.resolver = loopback
    job = BuildJob("b1", url, "", commit, subdir, "fe/x:" + commit, push=False)
    return executor.manifest(job, await executor.approved_pin(job))


@pytest.fixture
def volume() -> Iterator[Path]:
    """Stands for the checkout emptyDir (0777), below directories uid 65534 can traverse."""
    root = Path(tempfile.mkdtemp(prefix="fancy-env-podfetch-", dir="/tmp"))
    root.chmod(0o711)
    yield root / "work"
    shutil.rmtree(root, ignore_errors=True)


def run_fetch(pod: dict[str, Any], volume: Path) -> tuple[int, list[dict[str, str]], Path]:
    """Run the pod's fetch init container on this machine; (exit code, log, builder's dir)."""
    (init,) = [c for c in pod["spec"]["initContainers"] if c["name"] == "fetch"]
    assert init["workingDir"] == WORK_DIR and init["volumeMounts"][0]["mountPath"] == WORK_DIR
    volume.mkdir()
    volume.chmod(0o777)
    user: dict[str, Any] = {}
    if os.geteuid() == 0:
        uid = init["securityContext"]["runAsUser"]
        user = {"user": uid, "group": uid, "extra_groups": []}
    proc = subprocess.run(
        init["command"], cwd=volume, env={"PATH": os.environ["PATH"]}, capture_output=True,
        text=True, timeout=120, check=False, **user,
    )  # fmt: skip
    log = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.stderr == ""
    (builder,) = pod["spec"]["containers"]
    local = builder["args"][-1]
    assert local.startswith(WORK_DIR + "/src")
    return proc.returncode, log, volume / os.path.relpath(local, WORK_DIR)


async def test_the_program_needs_no_fancy_env(tmp_path: Path) -> None:
    """The container's interpreter flags (-I -S: no site-packages, no cwd, no PYTHON*
    variables) leave only the standard library: fancy_env cannot be imported there."""
    pod = await pod_for("http://127.0.0.1:9/x.git", "a" * 40)
    flags = pod["spec"]["initContainers"][0]["command"][:-2]
    assert flags == ["python3", "-I", "-S", "-c"]
    code, err = run_python([*flags, "import fancy_env"], tmp_path)
    assert code != 0 and "No module named 'fancy_env'" in err


def run_python(argv: list[str], cwd: Path) -> tuple[int, str]:
    env = {"PATH": os.environ["PATH"]}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stderr


async def test_fetch_checks_out_the_commit_through_the_pinned_address(
    git_server: GitServer, volume: Path
) -> None:
    repo = git_server.create("podplain", {"env/Dockerfile": "FROM x\n", "a.txt": "one\n"})
    first = git("rev-parse", "HEAD", cwd=repo.work)
    repo.commit({"a.txt": "two\n"})
    url = repo.url.replace("127.0.0.1", PIN_HOST)
    pod = await pod_for(url, first, "env")
    argv = json.loads(pod["spec"]["initContainers"][0]["command"][-1])["steps"][0]["argv"]
    assert f"http.curloptResolve={PIN_HOST}:{git_server.port}:127.0.0.1" in argv
    code, log, context = run_fetch(pod, volume)
    assert code == 0, log
    assert (context / "Dockerfile").read_text() == "FROM x\n"
    assert (context.parent / "a.txt").read_text() == "one\n"
    assert log[-1] == {"message": "Checkout confined: building 'env'\n", "phase": "fetching"}


@pytest.mark.parametrize(
    ("link", "target", "subdir", "named"),
    [
        ("r", "/", "r{decoy}", "'r'"),
        ("binder", "{decoy}", "", "'binder'"),
        ("Dockerfile", "{decoy}/secret", "", "'Dockerfile'"),
    ],
)
async def test_links_out_of_the_checkout_fail_the_pod(
    git_server: GitServer, tmp_path: Path, volume: Path, link: str, target: str, subdir: str,
    named: str,
) -> None:  # fmt: skip
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "secret").write_text("TOP-SECRET\n")
    (decoy / "secret").chmod(0o600)
    repo = git_server.create("podlinks", {"README.md": "x\n"})
    commit = repo.symlink(link, target.format(decoy=decoy))
    pod = await pod_for(repo.url, commit, subdir.format(decoy=decoy))
    code, log, _ = run_fetch(pod, volume)
    assert code == 1
    assert log[-1]["phase"] == "failed"
    assert named in log[-1]["message"] and "outside the repository" in log[-1]["message"]
    assert "TOP-SECRET" not in json.dumps(log)
    assert (decoy / "secret").read_text() == "TOP-SECRET\n"


async def test_clone_time_redirect_fails_the_pod(tmp_path: Path, volume: Path) -> None:
    with Canary() as canary:
        server = GitServer(tmp_path / "redir", redirect_to=f"http://127.0.0.1:{canary.port}")
        server.start()
        try:
            repo = server.create("podmoved")
            commit = git("rev-parse", "HEAD", cwd=repo.work)
            code, log, _ = run_fetch(await pod_for(repo.url, commit), volume)
        finally:
            server.stop()
    assert code == 1 and log[-1]["phase"] == "failed"
    assert "redirected" in log[-1]["message"], log
    assert canary.connections == 0


async def test_submodules_are_not_fetched(git_server: GitServer, volume: Path) -> None:
    with Canary() as canary:
        repo = git_server.create("podsub")
        commit = repo.gitlink("lib", f"http://127.0.0.1:{canary.port}/x.git")
        code, log, context = run_fetch(await pod_for(repo.url, commit), volume)
    assert code == 0, log
    assert any("submodules" in e["message"] and "not fetched" in e["message"] for e in log)
    assert list((context / "lib").iterdir()) == []
    assert canary.connections == 0
