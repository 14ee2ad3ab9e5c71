"""Build pods' network box on Kubernetes: the NetworkPolicy and the dind engine mode.

Pure manifests against literal dicts and parameter tables; the executor's policy calls
against the fake API on loopback (tests/support/fake_k8s.py: no API server can run here,
and no CNI either, so enforcement itself is the cluster's: docs/build-pods.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from traitlets import TraitError

from fancy_env.builder.executors.base import BuildFailed, BuildJob
from fancy_env.builder.executors.kube import (
    KubernetesExecutor,
    build_network_policy_manifest,
    build_pod_manifest,
    parse_egress_entry,
    pod_name,
)
from tests.support.fake_k8s import FakeKubeAPI

JOB = BuildJob("b", "https://x.org/r", "", "c" * 40, "", "fe/x:" + "c" * 40, push=True)
LABELS = {"app.kubernetes.io/name": "fancy-env", "app.kubernetes.io/component": "build"}
DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
V4_EXCEPT = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
]  # fmt: skip
V6_EXCEPT = ["::1/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10", "ff00::/8"]


def public_rule(extra_v4: list[str] | None = None, extra_v6: list[str] | None = None) -> Any:
    return {
        "to": [
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": V4_EXCEPT + (extra_v4 or [])}},
            {"ipBlock": {"cidr": "::/0", "except": V6_EXCEPT + (extra_v6 or [])}},
        ]
    }


def test_policy_default() -> None:
    assert build_network_policy_manifest("jhub") == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "fancy-env-build", "namespace": "jhub", "labels": LABELS},
        "spec": {
            "podSelector": {"matchLabels": LABELS},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [DNS_RULE, public_rule()],
        },
    }


@pytest.mark.parametrize(
    ("allowed", "denied", "extra_rules", "extra_v4", "extra_v6"),
    [
        (["10.1.2.3/32:3141"], [], [{"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}],
                                     "ports": [{"protocol": "TCP", "port": 3141}]}], [], []),
        (["10.8.0.0/16"], [], [{"to": [{"ipBlock": {"cidr": "10.8.0.0/16"}}]}], [], []),
        (["fd00::5/128:5000"], [], [{"to": [{"ipBlock": {"cidr": "fd00::5/128"}}],
                                     "ports": [{"protocol": "TCP", "port": 5000}]}], [], []),
        ([], ["203.0.113.0/24", "2001:db8::/32"], [], ["203.0.113.0/24"], ["2001:db8::/32"]),
    ],
)  # fmt: skip
def test_policy_admin_entries(
    allowed: list[str], denied: list[str], extra_rules: list[Any], extra_v4: list[str],
    extra_v6: list[str],
) -> None:  # fmt: skip
    policy = build_network_policy_manifest("ns", allowed_egress=allowed, denied_cidrs=denied)
    assert policy["spec"]["egress"] == [DNS_RULE, public_rule(extra_v4, extra_v6), *extra_rules]
    assert policy["spec"]["ingress"] == []


def test_policy_dns_selector() -> None:
    policy = build_network_policy_manifest(
        "ns", dns_namespace="dns", dns_pod_labels={"app": "coredns"}
    )
    assert policy["spec"]["egress"][0]["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
            "podSelector": {"matchLabels": {"app": "coredns"}},
        }
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("10.1.2.3/32", ("10.1.2.3/32", None)),
        ("10.1.2.3/24:80", ("10.1.2.0/24", 80)),
        (" 192.168.1.10/32:3141 ", ("192.168.1.10/32", 3141)),
        ("fd00::/64", ("fd00::/64", None)),
        ("fd00::1/128:443", ("fd00::1/128", 443)),
        ("10.1.2.3", None),
        ("10.1.2.3:80", None),
        ("10.1.2.300/32", None),
        ("10.1.2.3/33", None),
        ("10.1.2.3/32:0", None),
        ("10.1.2.3/32:70000", None),
        ("registry.local/32", None),
        ("", None),
    ],
)
def test_parse_egress_entry(entry: str, expected: tuple[str, int | None] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="allowed_egress entry"):
            parse_egress_entry(entry)
    else:
        assert parse_egress_entry(entry) == expected


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("allowed_egress", ["10.0.0.1"], "is not CIDR or CIDR:port"),
        ("denied_cidrs", ["10.0.0.0/8:80"], "takes no port"),
        ("engine_mode", "podman", "engine_mode must be one of dind, host-socket, none"),
    ],
)
def test_executor_refuses_bad_config(trait: str, value: Any, message: str) -> None:
    with pytest.raises(TraitError, match=message):
        KubernetesExecutor(**{trait: value})


def test_dind_pod() -> None:
    manifest = build_pod_manifest(JOB, namespace="ns", build_image="r2d:1", dind_image="dind:1")
    fetch = manifest["spec"]["initContainers"][0]  # literal in test_kube_executor.py
    assert fetch["name"] == "fetch"  # first: the checkout is made before dind starts
    assert manifest["spec"] == {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "initContainers": [
            fetch,
            {
                "name": "dind",
                "image": "dind:1",
                "restartPolicy": "Always",
                "args": ["dockerd", "--host=unix:///var/run/dind/docker.sock"],
                "env": [{"name": "DOCKER_TLS_CERTDIR", "value": ""}],
                "securityContext": {"privileged": True},
                "resources": {},
                "startupProbe": {
                    "exec": {"command": ["docker", "--host=unix:///var/run/dind/docker.sock",
                                         "info"]},
                    "periodSeconds": 1,
                    "failureThreshold": 120,
                },
                "volumeMounts": [
                    {"name": "dind-socket", "mountPath": "/var/run/dind"},
                    {"name": "dind-storage", "mountPath": "/var/lib/docker"},
                ],
            }
        ],
        "volumes": [
            {"name": "checkout", "emptyDir": {}},
            {"name": "dind-socket", "emptyDir": {}},
            {"name": "dind-storage", "emptyDir": {}},
        ],
        "containers": [
            {
                "name": "builder",
                "image": "r2d:1",
                "args": [
                    "repo2docker", "--engine", "docker", "--json-logs", "--no-run",
                    "--user-id", "1000", "--user-name", "jovyan",
                    "--image-name", JOB.image, "--push", "/work/src",
                ],
                "env": [
                    {"name": "GIT_ALLOW_PROTOCOL", "value": "https:http"},
                    {"name": "DOCKER_HOST", "value": "unix:///var/run/dind/docker.sock"},
                ],
                "resources": {},
                "securityContext": {"allowPrivilegeEscalation": False},
                "volumeMounts": [
                    {"name": "checkout", "mountPath": "/work", "readOnly": True},
                    {"name": "dind-socket", "mountPath": "/var/run/dind"},
                ],
            }
        ],
    }  # fmt: skip
    assert manifest["metadata"]["labels"] == LABELS  # the policy's podSelector matches


@pytest.mark.parametrize(
    ("mode", "socket", "has_host_path", "has_dind"),
    [
        ("dind", "/var/run/docker.sock", False, True),
        ("host-socket", "/var/run/docker.sock", True, False),
        ("host-socket", "", False, False),
        ("none", "/var/run/docker.sock", False, False),
    ],
)
def test_engine_modes(mode: str, socket: str, has_host_path: bool, has_dind: bool) -> None:
    spec = build_pod_manifest(
        JOB, namespace="ns", build_image="r", engine_mode=mode, docker_socket=socket
    )["spec"]
    volumes = spec.get("volumes", [])
    assert any("hostPath" in v for v in volumes) == has_host_path
    inits = [c["name"] for c in spec["initContainers"]]
    assert inits == (["fetch", "dind"] if has_dind else ["fetch"])  # every mode fetches first
    env = {e["name"] for e in spec["containers"][0]["env"]}
    assert ("DOCKER_HOST" in env) == has_dind


def test_unknown_engine_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="engine_mode 'x'"):
        build_pod_manifest(JOB, namespace="ns", build_image="r", engine_mode="x")


LINES = ['{"message": "Step 1/1 : FROM base\\n", "phase": "building"}']


async def public_address(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]  # the service "resolves" the repo's host: no DNS query is sent


async def run_build(api: FakeKubeAPI, **config: Any) -> KubernetesExecutor:
    executor = KubernetesExecutor(api_url=api.url, namespace="ns", poll_interval=0.01, **config)
    executor.resolver = public_address
    try:
        await executor.run(JOB, lambda p, m: None)
    finally:
        await executor.close()
    return executor


async def test_executor_creates_the_policy_before_the_pod() -> None:
    api = await FakeKubeAPI(log_lines=LINES).start()
    try:
        await run_build(api, allowed_egress=["10.9.9.9/32:5000"])
    finally:
        api.stop()
    assert api.policy_calls == ["create fancy-env-build"]
    assert api.policies["fancy-env-build"] == build_network_policy_manifest(
        "ns", allowed_egress=["10.9.9.9/32:5000"]
    )
    assert api.created == [pod_name(JOB.image)]


async def test_existing_policy_is_replaced_once_per_process() -> None:
    api = await FakeKubeAPI(log_lines=LINES).start()
    api.policies["fancy-env-build"] = {"stale": True}
    executor = KubernetesExecutor(api_url=api.url, namespace="ns", poll_interval=0.01)
    executor.resolver = public_address
    try:
        await executor.run(JOB, lambda p, m: None)
        await executor.run(JOB, lambda p, m: None)
    finally:
        await executor.close()
        api.stop()
    assert api.policy_calls == ["create fancy-env-build", "replace fancy-env-build"]
    assert api.policies["fancy-env-build"] == build_network_policy_manifest("ns")


async def test_forbidden_policy_fails_closed() -> None:
    api = await FakeKubeAPI(log_lines=LINES, policy_refusal=403).start()
    try:
        with pytest.raises(BuildFailed, match="networkpolicies.*network_policy = False"):
            await run_build(api)
    finally:
        api.stop()
    assert api.created == [], "no build pod may start without its policy"


async def test_policy_off_makes_no_policy_call() -> None:
    api = await FakeKubeAPI(log_lines=LINES, policy_refusal=403).start()
    try:
        await run_build(api, network_policy=False)
    finally:
        api.stop()
    assert api.policy_calls == [] and api.created == [pod_name(JOB.image)]


def test_the_guide_ships_the_same_policy() -> None:
    import re
    from pathlib import Path

    import yaml

    guide = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"
    block = re.search(
        r"```yaml\n# fancy-env-build-networkpolicy\.yaml[^\n]*\n(.*?)```", guide.read_text(), re.S
    )
    assert block, "docs/kubernetes.md lost the NetworkPolicy manifest"
    assert yaml.safe_load(block.group(1)) == build_network_policy_manifest("jhub")
