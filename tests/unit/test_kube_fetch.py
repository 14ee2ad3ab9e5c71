"""The build pod's fetch: the in-pod check agrees with the service's, and the executor's
fetch phase against the fake Kubernetes API (tests/support/fake_k8s.py, a mock: no API
server can run here). The real git runs are in tests/builder/test_kube_fetch_real.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from traitlets import TraitError

from fancy_env.builder import checkout
from fancy_env.builder.confine import CheckoutError
from fancy_env.builder.executors.base import BuildFailed, BuildJob
from fancy_env.builder.executors.kube import KubernetesExecutor, build_pod_manifest, pod_name
from fancy_env.builder.executors.kube_fetch import fetch_program, local_context
from fancy_env.builder.podfetch import pod_spec
from tests.support.fake_k8s import FakeKubeAPI

# (links and dirs to make, subdir): every refusal and acceptance rule of the checks
TREES = [
    ({"env/": ""}, "env"),
    ({"env/": "", "env/binder": "."}, "env"),
    ({"real/": "", "env": "real"}, "env"),
    ({"up": "/"}, ""),
    ({"up": "/"}, "up/etc"),
    ({"deep/x/": "", "deep/x/req.txt": "../../../../../../../etc/passwd"}, ""),
    ({"binder": "/etc"}, ""),
    ({".binder": "../.."}, ""),
    ({"dangling": "nothing-here"}, ""),
    ({"loop": "loop"}, ""),
    ({}, "missing"),
    ({}, "../.."),
    ({"env/": ""}, "env/../.."),
]


def make_tree(root: Path, entries: dict[str, str]) -> None:
    root.mkdir()
    for path, target in entries.items():
        if path.endswith("/"):
            (root / path).mkdir(parents=True)
        else:
            (root / path).symlink_to(target)


def in_pod(work: Path, subdir: str) -> tuple[int, str]:
    """The assembled pod program (no git steps) on `work/src`: (exit code, last message)."""
    spec = pod_spec([], {}, "src", subdir, 10)
    proc = subprocess.run(
        ["python3", "-I", "-S", "-c", fetch_program(), spec], cwd=work,
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    last = json.loads(proc.stdout.splitlines()[-1])
    return proc.returncode, last["message"].rstrip("\n")


@pytest.mark.parametrize(("entries", "subdir"), TREES)
def test_in_pod_check_agrees_with_the_service(
    tmp_path: Path, entries: dict[str, str], subdir: str
) -> None:
    make_tree(tmp_path / "src", entries)
    code, message = in_pod(tmp_path, subdir)
    try:
        context = checkout.confined_context(str(tmp_path / "src"), subdir)
    except CheckoutError as e:
        assert (code, message) == (1, e.reason)
    else:
        relative = os.path.relpath(context, os.path.realpath(tmp_path / "src"))
        assert (code, message) == (0, f"Checkout confined: building {relative!r}")


@pytest.mark.parametrize(
    ("subdir", "expected"),
    [("", "/work/src"), ("env", "/work/src/env"), ("a/b", "/work/src/a/b")],
)
def test_local_context(subdir: str, expected: str) -> None:
    assert local_context(subdir) == expected


def test_submodules_are_refused_with_the_kubernetes_executor() -> None:
    with pytest.raises(TraitError, match="allow_submodules=True is not supported"):
        KubernetesExecutor(allow_submodules=True)
    assert KubernetesExecutor(allow_submodules=False).allow_submodules is False


JOB = BuildJob("b1", "https://git.example.org/o/r", "", "d" * 40, "", "fe/r:" + "d" * 40, False)
NAME = pod_name(JOB.image)
LINES = ['{"message": "Step 1/1 : FROM base\\n", "phase": "building"}']


def executor_for(api: FakeKubeAPI, addresses: list[str], asked: list[str]) -> KubernetesExecutor:
    executor = KubernetesExecutor(api_url=api.url, namespace="ns", poll_interval=0.01)

    async def resolver(host: str, port: int) -> list[str]:  # no DNS query leaves the machine
        asked.append(host)
        return addresses

    executor.resolver = resolver
    return executor


async def test_fetch_refusal_fails_the_build_with_its_reason() -> None:
    refusal = "the repository's 'r' is a symbolic link that leads outside the repository"
    api = await FakeKubeAPI(
        log_lines=LINES, fetch_exit=1,
        fetch_lines=['{"message": "Cloning x\\n", "phase": "fetching"}',
                     json.dumps({"message": refusal + "\n", "phase": "failed"})],
    ).start()  # fmt: skip
    executor = executor_for(api, ["140.82.112.3"], [])
    seen: list[tuple[str, str]] = []
    try:
        with pytest.raises(BuildFailed) as info:
            await executor.run(JOB, lambda p, m: seen.append((p, m)))
    finally:
        await executor.close()
        api.stop()
    assert info.value.reason == refusal
    assert ("fetching", "Cloning x") in seen
    assert api.log_requests == ["fetch"], "the builder never runs after a refused fetch"
    assert api.deleted == [NAME]


async def test_fetch_then_builder_logs_in_order() -> None:
    api = await FakeKubeAPI(
        log_lines=LINES, fetch_lines=['{"message": "Cloning x\\n", "phase": "fetching"}']
    ).start()
    asked: list[str] = []
    executor = executor_for(api, ["140.82.112.3"], asked)
    seen: list[str] = []
    try:
        await executor.run(JOB, lambda p, m: seen.append(m))
    finally:
        await executor.close()
        api.stop()
    assert asked == ["git.example.org"] and api.log_requests == ["fetch", "builder"]
    assert seen.index("Cloning x") < seen.index("Step 1/1 : FROM base")
    steps = json.loads(api_pod_spec(api)["initContainers"][0]["command"][-1])["steps"]
    assert "http.curloptResolve=git.example.org:443:140.82.112.3" in steps[0]["argv"]


def api_pod_spec(api: FakeKubeAPI) -> dict:
    return api.created_bodies[NAME]["spec"]


async def test_a_refused_host_never_gets_a_pod() -> None:
    api = await FakeKubeAPI(log_lines=LINES).start()
    executor = executor_for(api, ["10.0.0.5"], [])
    try:
        with pytest.raises(BuildFailed, match="resolves to a private address"):
            await executor.run(JOB, lambda p, m: None)
    finally:
        await executor.close()
        api.stop()
    assert api.created == []


async def test_adopting_a_running_pod_does_not_resolve_again() -> None:
    api = await FakeKubeAPI(log_lines=LINES).start()
    api.pods[NAME] = {**build_pod_manifest(JOB, namespace="ns", build_image="r2d"),
                      "status": {"phase": "Running"}}  # fmt: skip
    asked: list[str] = []
    executor = executor_for(api, [], asked)
    try:
        await executor.run(JOB, lambda p, m: None)
    finally:
        await executor.close()
        api.stop()
    assert asked == [] and api.created == [] and api.log_requests == ["fetch", "builder"]
