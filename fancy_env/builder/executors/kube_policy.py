"""The NetworkPolicy of build pods (pure): no ingress, egress to DNS and public addresses.

See `fancy_env.builder.executors.kube` (which creates it) and docs/build-pods.md.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

BUILD_LABELS = {"app.kubernetes.io/name": "fancy-env", "app.kubernetes.io/component": "build"}
POLICY_NAME = "fancy-env-build"
# Never reachable from a build, whatever the admin allows on top (IPv4 and IPv6).
DENIED_V4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
)  # fmt: skip
DENIED_V6 = ("::1/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10", "ff00::/8")
_EGRESS_ENTRY = re.compile(r"(?P<cidr>[0-9A-Fa-f:.]+/[0-9]{1,3})(?::(?P<port>[0-9]{1,5}))?")


def parse_egress_entry(entry: str) -> tuple[str, int | None]:
    """`CIDR` or `CIDR:port` (TCP) -> (normalised CIDR, port); ValueError names the entry."""
    m = _EGRESS_ENTRY.fullmatch(entry.strip())
    try:
        if m is None:
            raise ValueError
        network = ipaddress.ip_network(m["cidr"], strict=False)
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"allowed_egress entry {entry!r} is not CIDR or CIDR:port "
            "(e.g. '10.1.2.3/32:3141' or 'fd00::/64')"
        ) from None
    return str(network), port


def build_network_policy_manifest(
    namespace: str,
    *,
    allowed_egress: list[str] | tuple[str, ...] = (),
    denied_cidrs: list[str] | tuple[str, ...] = (),
    dns_namespace: str = "kube-system",
    dns_pod_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The NetworkPolicy of build pods (pure): no ingress; egress to DNS (kube-dns pods,
    port 53), to every public address (0.0.0.0/0 and ::/0 minus private, loopback,
    link-local, multicast and `denied_cidrs`), and to each admin `allowed_egress` entry
    (`CIDR` or `CIDR:port`, TCP)."""
    extra_v4 = [c for c in denied_cidrs if ipaddress.ip_network(c, strict=False).version == 4]
    extra_v6 = [c for c in denied_cidrs if ipaddress.ip_network(c, strict=False).version == 6]
    dns_port = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    egress: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": dns_namespace}
                    },
                    "podSelector": {"matchLabels": dict(dns_pod_labels or {"k8s-app": "kube-dns"})},
                }
            ],
            "ports": dns_port,
        },
        {
            "to": [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": [*DENIED_V4, *extra_v4]}},
                {"ipBlock": {"cidr": "::/0", "except": [*DENIED_V6, *extra_v6]}},
            ]
        },
    ]
    for entry in allowed_egress:
        cidr, port = parse_egress_entry(entry)
        rule: dict[str, Any] = {"to": [{"ipBlock": {"cidr": cidr}}]}
        if port is not None:
            rule["ports"] = [{"protocol": "TCP", "port": port}]
        egress.append(rule)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY_NAME, "namespace": namespace, "labels": dict(BUILD_LABELS)},
        "spec": {
            "podSelector": {"matchLabels": dict(BUILD_LABELS)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": egress,
        },
    }
