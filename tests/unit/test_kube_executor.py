"""Build pods: the pure manifest against literal dicts, the API calls against a fake API."""

from __future__ import annotations

import asyncio
import json
import os
import re

import pytest

from fancy_env.builder.executors.base import BuildFailed, BuildJob
from fancy_env.builder.executors.kube import (
    KubernetesExecutor,
    build_pod_manifest,
    pod_name,
    split_timestamp,
)
from fancy_env.builder.executors.kube_fetch import fetch_program
from tests.support.fake_k8s import FakeKubeAPI

GIT = [
    "git", "-c", "http.followRedirects=false", "-c", "credential.helper=",
    "-c", "protocol.allow=never", "-c", "protocol.http.allow=always",
    "-c", "protocol.https.allow=always", "-c", "core.hooksPath=/dev/null",
]  # fmt: skip
GIT_ENV = {
    "GIT_ALLOW_PROTOCOL": "https:http", "GIT_ASKPASS": "/bin/true",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_PROTOCOL_FROM_USER": "0",
    "GIT_TERMINAL_PROMPT": "0", "HOME": "/nonexistent", "LC_ALL": "C",
    "XDG_CONFIG_HOME": "/nonexistent",
}  # fmt: skip


def fetch_init(url: str, commit: str, subdir: str, pin: list[str], resources: dict) -> dict:
    """The literal `fetch` init container."""
    spec = {
        "env": GIT_ENV,
        "root": "src",
        "steps": [
            {"argv": [*GIT, *pin, "clone", "-q", "--no-checkout", "--no-recurse-submodules",
                      "--", url, "src"],
             "cwd": ".", "what": f"cloning {url}"},
            {"argv": [*GIT, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach",
                      commit, "--"],
             "cwd": "src", "what": f"checking out commit {commit[:12]}"},
        ],
        "subdir": subdir,
        "timeout": 600,
    }  # fmt: skip
    return {
        "name": "fetch",
        "image": "r2d:1",
        "command": ["python3", "-I", "-S", "-c", fetch_program(), json.dumps(spec, sort_keys=True)],
        "workingDir": "/work",
        "resources": resources,
        "securityContext": {
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },  # fmt: skip
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "checkout", "mountPath": "/work"}],
    }


JOB = BuildJob(
    build_id="b1", repo="https://github.com/o/r", ref="main", commit="a" * 40, subdir="env",
    image="registry.example/fe/github-2ecom-2fo-2fr:" + "a" * 40, push=True,
)  # fmt: skip
NAME = pod_name(JOB.image)


def test_pod_name_is_deterministic_dns_label() -> None:
    assert NAME == pod_name(JOB.image) != pod_name(JOB.image + "x")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", NAME) and len(NAME) <= 63


def test_manifest_full() -> None:
    manifest = build_pod_manifest(
        JOB, namespace="builds", build_image="r2d:1", registry_secret="reg",
        engine_mode="host-socket", resources={"limits": {"memory": "2Gi"}},
        node_selector={"pool": "build"}, checkout_size_limit="10Gi",
        pin=["-c", "http.curloptResolve=github.com:443:140.82.112.3"],
    )  # fmt: skip
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": NAME,
            "namespace": "builds",
            "labels": {
                "app.kubernetes.io/name": "fancy-env",
                "app.kubernetes.io/component": "build",
            },
            "annotations": {
                "fancy-env/image": JOB.image,
                "fancy-env/repo": "https://github.com/o/r",
                "fancy-env/commit": "a" * 40,
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "nodeSelector": {"pool": "build"},
            "volumes": [
                {"name": "checkout", "emptyDir": {"sizeLimit": "10Gi"}},
                {"name": "docker-socket",
                 "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
            ],
            "containers": [
                {
                    "name": "builder",
                    "image": "r2d:1",
                    "args": [
                        "repo2docker", "--engine", "docker", "--json-logs", "--no-run",
                        "--user-id", "1000", "--user-name", "jovyan",
                        "--image-name", JOB.image, "--push", "/work/src/env",
                    ],
                    "env": [
                        {"name": "GIT_ALLOW_PROTOCOL", "value": "https:http"},
                        {"name": "CONTAINER_ENGINE_REGISTRY_CREDENTIALS",
                         "valueFrom": {"secretKeyRef": {"name": "reg", "key": "credentials"}}},
                    ],
                    "resources": {"limits": {"memory": "2Gi"}},
                    "securityContext": {"allowPrivilegeEscalation": False},
                    "volumeMounts": [
                        {"name": "checkout", "mountPath": "/work", "readOnly": True},
                        {"name": "docker-socket", "mountPath": "/var/run/docker.sock"},
                    ],
                }
            ],
            "initContainers": [
                fetch_init(
                    "https://github.com/o/r", "a" * 40, "env",
                    ["-c", "http.curloptResolve=github.com:443:140.82.112.3"],
                    {"limits": {"memory": "2Gi"}},
                )
            ],
        },
    }  # fmt: skip


def test_manifest_minimal() -> None:
    job = BuildJob("b", "https://x.org/r", "", "b" * 40, "", "fe/x:" + "b" * 40, push=False)
    manifest = build_pod_manifest(job, namespace="ns", build_image="r2d:1", engine_mode="none")
    assert manifest["spec"] == {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [
            {
                "name": "builder",
                "image": "r2d:1",
                "args": [
                    "repo2docker", "--engine", "docker", "--json-logs", "--no-run",
                    "--user-id", "1000", "--user-name", "jovyan",
                    "--image-name", "fe/x:" + "b" * 40, "/work/src",
                ],
                "env": [{"name": "GIT_ALLOW_PROTOCOL", "value": "https:http"}],
                "resources": {},
                "securityContext": {"allowPrivilegeEscalation": False},
                "volumeMounts": [{"name": "checkout", "mountPath": "/work", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "checkout", "emptyDir": {}}],
        "initContainers": [fetch_init("https://x.org/r", "b" * 40, "", [], {})],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2024-01-02T03:04:05.500000000Z hello world", (1704164645.5, "hello world")),
        ("2024-01-02T03:04:05Z x", (1704164645.0, "x")),
        ("not-a-time message", (0.0, "not-a-time message")),
    ],
)
def test_split_timestamp(line: str, expected: tuple[float, str]) -> None:
    when, message = split_timestamp(line)
    assert (round(when, 3), message) == expected


def r2d(phase: str, message: str) -> str:
    return json.dumps({"message": message + "\n", "phase": phase})


LINES = [
    r2d("fetching", "Picked Git content provider."),
    r2d("building", "Step 1/2 : FROM base"),
    r2d("building", "[fancy-env] pushing " + JOB.image),
    r2d("building", "Pushed"),
]


async def public_address(host: str, port: int) -> list[str]:
    """No DNS query leaves this machine: github.com "resolves" to a public address."""
    return ["140.82.112.3"]


async def executor_for(api: FakeKubeAPI) -> KubernetesExecutor:
    executor = KubernetesExecutor(api_url=api.url, namespace="ns", poll_interval=0.01)
    executor.resolver = public_address
    return executor


async def test_run_creates_streams_and_deletes() -> None:
    api = await FakeKubeAPI(log_lines=LINES).start()
    executor = await executor_for(api)
    seen: list[tuple[str, str]] = []
    try:
        await executor.run(JOB, lambda p, m: seen.append((p, m)))
    finally:
        await executor.close()
        api.stop()
    assert api.created == [NAME] and api.deleted == [NAME]
    assert seen[0] == ("fetching", f"Started build pod {NAME}")
    assert ("fetching", "Picked Git content provider.") in seen
    assert ("building", "Step 1/2 : FROM base") in seen
    assert seen[-1] == ("pushing", "Pushed")


async def test_second_request_attaches_to_running_pod() -> None:
    api = await FakeKubeAPI(log_lines=LINES).start()
    api.pods[NAME] = {**build_pod_manifest(JOB, namespace="ns", build_image="r2d"),
                      "status": {"phase": "Running"}}  # fmt: skip
    executor = await executor_for(api)
    seen: list[tuple[str, str]] = []
    try:
        assert await executor.is_running(JOB)
        await executor.run(JOB, lambda p, m: seen.append((p, m)))
    finally:
        await executor.close()
        api.stop()
    assert api.created == []
    assert seen[0] == ("fetching", f"Attached to the running build pod {NAME}")


async def test_failed_pod_fails_the_build() -> None:
    api = await FakeKubeAPI(log_lines=LINES[:2], final_phase="Failed").start()
    executor = await executor_for(api)
    try:
        with pytest.raises(BuildFailed, match="ended with phase Failed"):
            await executor.run(JOB, lambda p, m: None)
        assert not await executor.is_running(JOB)
    finally:
        await executor.close()
        api.stop()
    assert api.deleted == [NAME]


async def test_cancel_deletes_pod_but_shutdown_keeps_it() -> None:
    api = await FakeKubeAPI(log_lines=LINES * 50, line_delay=0.02).start()
    executor = await executor_for(api)
    try:
        task = asyncio.create_task(executor.run(JOB, lambda p, m: None))
        while not api.line_times:  # noqa: ASYNC110 - the pod exists and its log streams
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert api.deleted == [NAME]

        executor.shutting_down = True
        task = asyncio.create_task(executor.run(JOB, lambda p, m: None))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert api.deleted == [NAME] and NAME in api.pods
    finally:
        await executor.close()
        api.stop()


async def test_adoption_skips_lines_already_stored() -> None:
    api = await FakeKubeAPI(log_lines=LINES, line_delay=0.05).start()
    api.pods[NAME] = {**build_pod_manifest(JOB, namespace="ns", build_image="r2d"),
                      "status": {"phase": "Running"}}  # fmt: skip
    executor = await executor_for(api)
    first: list[tuple[str, str]] = []
    try:
        await executor.run(JOB, lambda p, m: first.append((p, m)))
        api.pods[NAME] = {**build_pod_manifest(JOB, namespace="ns", build_image="r2d"),
                          "status": {"phase": "Running"}}  # fmt: skip
        resume = api.line_times[1] + 0.001  # lines 1 and 2 were stored before a restart
        adopted: list[tuple[str, str]] = []
        from dataclasses import replace

        await executor.run(replace(JOB, resume_after=resume), lambda p, m: adopted.append((p, m)))
    finally:
        await executor.close()
        api.stop()
    assert [m for _, m in adopted[1:]] == [m for _, m in first[-2:]]


@pytest.mark.cluster
@pytest.mark.skipif(not os.environ.get("FANCY_ENV_TEST_KUBECONFIG"), reason="needs a cluster")
async def test_real_cluster_build_pod() -> None:  # pragma: no cover - needs a cluster
    os.environ["KUBECONFIG"] = os.environ["FANCY_ENV_TEST_KUBECONFIG"]
    executor = KubernetesExecutor(namespace=os.environ.get("FANCY_ENV_TEST_NAMESPACE", "default"))
    try:
        assert not await executor.is_running(JOB)
    finally:
        await executor.close()
