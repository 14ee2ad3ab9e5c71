"""Every Kubernetes object the project creates, validated against the Kubernetes API's own
OpenAPI schemas for each minor version z2jh supports; deliberately broken manifests fail.

The schemas are the JSON schemas `kubernetes-validate` bundles (converted from each
release's OpenAPI document; offline, no cluster). Objects are validated as the API server
receives them: kubernetes client models go through `ApiClient.sanitize_for_serialization`
(what kubernetes_asyncio sends), the build pod is already a plain dict. Strict mode
(`additionalProperties: false`) is used throughout: a misspelt field is a bug whether the
server drops it silently or warns.

User objects come from `FancyKubeSpawner` built inside a running event loop with a dummy
KUBECONFIG (as in test_kube_manifest.py); nothing calls an API server. Adding an object kind
is one row in OBJECTS; `test_every_kind_in_the_package_has_a_row` fails until it is added.

Not checked here (the API server's Go validation and admission, which need a cluster): name
formats, quantity syntax, cross-field rules, enum values, admission webhooks and policies.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
    # jsonschema imports rfc3987_syntax (when installed) at import time for its optional
    # `iri` format checker, which compiles a grammar: ~4 s of CPU. kubernetes-validate checks
    # no formats, so hide it while jsonschema is first imported; later imports see it again.
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        import jsonschema  # noqa: F401
    finally:
        del sys.modules["rfc3987_syntax"]

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml
from traitlets.config import Config

from fancy_env.builder.executors.base import BuildJob
from fancy_env.builder.executors.kube import (
    KubernetesExecutor,
    build_network_policy_manifest,
    build_pod_manifest,
)
from tests.support.kubespawner_examples import Z2JH_EXAMPLE
from tests.unit.test_kube_manifest import CASES, DUMMY_KUBECONFIG
from tests.unit.test_spawner_mixin import FakeConfirmer

ROOT = Path(__file__).resolve().parents[2]

# z2jh 4.4.0 (the current release, 2026-06-10): Chart.yaml `kubeVersion: ">=1.28.0-0"`, CI on
# k3s 1.28-1.31 plus the stable and latest channels; its main branch (the next release) moved
# the floor to 1.32 and tests 1.32-1.35. No upper bound: up to the newest minor the validator
# bundles (kubernetes-validate 1.37.0 ships 1.25-1.37).
VERSIONS = [f"1.{minor}" for minor in range(28, 38)]

Manifest = dict[str, Any]
Factory = Callable[[], Awaitable[Manifest]]


# --- the validator, with each version's schema files loaded once per test session -----------

_load_schema = kv_utils.schema_contents


@functools.cache
def _cached_schema(filename: str, desired_version: str) -> Any:
    return _load_schema(
        filename, desired_version
    )  # read-only afterwards: jsonschema copies nothing


@pytest.fixture(autouse=True, scope="module")
def cached_schemas() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kv_utils, "schema_contents", _cached_schema)  # validate() looks it up here
        yield


def schema_errors(manifest: Manifest, strict: bool = True) -> dict[str, str]:
    """{version: "path: message"} for every supported version the manifest fails."""
    errors: dict[str, str] = {}
    for version in VERSIONS:
        try:
            used = kubernetes_validate.validate(manifest, version, strict=strict)
        except kubernetes_validate.ValidationError as e:
            errors[version] = ".".join(str(p) for p in e.absolute_path) + ": " + e.message
        else:
            assert used == version, f"no schema for {version}: validated against {used}"
    return errors


# --- user objects (FancyKubeSpawner = KubeSpawner's manifests) -------------------------------


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    for var in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(var, raising=False)
    return path


PREFIX = "127.0.0.1:5000/fancy-env/"
REPO_PROFILES = [
    {
        "display_name": "Repo",
        "slug": "repo",
        "repository_build": {
            "enabled": True,
            "allowed_repos": [r"http://127\.0\.0\.1:\d+/ok/.*"],
            "kubespawner_override": {"mem_limit": "3G", "environment": {"BUILT": "1"}},
        },
    }
]
# what z2jh's hub config sets on KubeSpawner by default, plus per-user storage
Z2JH_TRAITS: dict[str, Any] = {
    "uid": 1000,
    "fs_gid": 100,
    "cpu_guarantee": 0.05,
    "mem_guarantee": "1G",
    "extra_labels": {"hub.jupyter.org/network-access-hub": "true"},
    "scheduler_name": "jhub-user-scheduler",
    "tolerations": [{"key": "hub.jupyter.org/dedicated", "operator": "Equal",
                     "value": "user", "effect": "NoSchedule"}],
    "node_affinity_preferred": [{"weight": 100, "preference": {"matchExpressions": [
        {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}}],
    "image_pull_secrets": ["fancy-env-registry"],
    "storage_pvc_ensure": True,
    "storage_capacity": "10Gi",
    "pvc_name_template": "claim-{username}",
    "volumes": [{"name": "volume-{username}",
                 "persistentVolumeClaim": {"claimName": "claim-{username}"}}],
    "volume_mounts": [{"name": "volume-{username}", "mountPath": "/home/jovyan"}],
    "lifecycle_hooks": {"postStart": {"exec": {"command": ["sh", "-c", "true"]}}},
    "init_containers": [{"name": "block-cloud-metadata",
                         "image": "quay.io/jupyterhub/k8s-network-tools:4.4.0",
                         "command": ["iptables", "-A", "OUTPUT", "-d", "169.254.169.254",
                                     "-j", "DROP"],
                         "securityContext": {"privileged": True, "runAsUser": 0,
                                             "capabilities": {"add": ["NET_ADMIN"]}}}],
}  # fmt: skip


async def _spawner(
    profile_list: Any, user_options: dict[str, str], traits: dict[str, Any], image: str = ""
) -> Any:
    from fancy_env.spawner_kube import FancyKubeSpawner

    c = Config()
    c.KubeSpawner.profile_list = profile_list
    c.KubeSpawner.image = "quay.io/jupyter/base-notebook:latest"
    c.KubeSpawner.environment = {"FROM_CONFIG": "1"}
    c.KubeSpawner.image_prefix = PREFIX
    for name, value in traits.items():
        setattr(c.KubeSpawner, name, value)
    confirmer = FakeConfirmer(image=image) if image else FakeConfirmer()
    spawner = FancyKubeSpawner(_mock=True, config=c, build_confirmer=confirmer)
    # the user's hub scopes (a real hub resolves roles: tests/integration/test_secrets_at_rest.py)
    spawner.fancy_user_scopes = lambda: frozenset({"custom:fancy-env:build"})
    spawner.user_options = dict(user_options)
    await spawner.load_user_options()
    return spawner


def as_sent(spawner: Any, obj: Any) -> Manifest:
    """The body kubernetes_asyncio sends. KubeSpawner's Service and Secret models carry no
    apiVersion/kind; the API server takes both from the endpoint (`POST …/services`), so
    the same defaults are filled in here before validating."""
    manifest: Manifest = spawner.api.api_client.sanitize_for_serialization(obj)
    kind = type(obj).__name__.removeprefix("V1")
    return {"apiVersion": "v1", "kind": kind, **manifest}


def user(
    what: str, profile_list: Any, user_options: dict[str, str], image: str = "", **traits: Any
) -> Factory:
    """A factory for one object KubeSpawner creates for this user: pod, pvc or service
    (`image`: what the build service confirms for a `build_id`)."""

    async def make() -> Manifest:
        from kubespawner.objects import make_owner_reference

        spawner = await _spawner(profile_list, user_options, traits, image)
        owner = make_owner_reference(spawner.pod_name, "0f1e2d3c-0000-4000-8000-000000000000")
        if what == "pod":
            obj = await spawner.get_pod_manifest()
        elif what == "pvc":
            obj = spawner.get_pvc_manifest()
        else:
            obj = spawner.get_service_manifest(owner, 8888)
        manifest = as_sent(spawner, obj)
        await spawner.api.api_client.close()
        return manifest

    return make


@pytest.fixture
def internal_ssl_files(tmp_path: Path) -> dict[str, str]:
    """What JupyterHub hands KubeSpawner with internal_ssl: PEM paths and the hub CA."""
    paths = {}
    for key in ("keyfile", "certfile", "cafile"):
        (tmp_path / key).write_text(f"-----BEGIN TEST {key}-----\n")
        paths[key] = str(tmp_path / key)
    return paths


# --- build pods --------------------------------------------------------------------------------

JOB = BuildJob(
    build_id="b1", repo="https://github.com/o/r", ref="main", commit="a" * 40, subdir="env",
    image="registry.example.org/fancy-env/github-2ecom-2fo-2fr:" + "a" * 40, push=True,
)  # fmt: skip


def pure(function: Callable[..., Manifest], *args: Any, **kwargs: Any) -> Factory:
    """A row's factory for a pure manifest function."""

    async def make() -> Manifest:
        return function(*args, **kwargs)

    return make


def build(**kwargs: Any) -> Factory:
    return pure(build_pod_manifest, JOB, **{"namespace": "jhub", "build_image": "r2d:1", **kwargs})


def executor(**traits: Any) -> Factory:
    """The manifest the executor sends, from its traits (defaults unless given)."""

    async def make() -> Manifest:
        return KubernetesExecutor(namespace="jhub", **traits).manifest(JOB)

    return make


# --- the table: (id, kind, factory); one row per object shape the project creates -----------

OBJECTS: list[tuple[str, str, Factory]] = [
    *[(f"user-pod-{name}", "Pod", user("pod", pl, opts)) for name, pl, opts in CASES],
    ("user-pod-z2jh-defaults", "Pod", user("pod", Z2JH_EXAMPLE, {}, **Z2JH_TRAITS)),
    ("user-pod-repo-build", "Pod",
     user("pod", REPO_PROFILES, {"profile": "repo", "build_id": "b1"})),
    ("user-pod-repo-build-digest", "Pod",
     user("pod", REPO_PROFILES, {"profile": "repo", "build_id": "b1"},
          image=PREFIX + "ok-repo@sha256:" + "0" * 64, image_pull_policy="IfNotPresent")),
    ("user-pvc-z2jh", "PersistentVolumeClaim", user("pvc", Z2JH_EXAMPLE, {}, **Z2JH_TRAITS)),
    ("user-pvc-selector", "PersistentVolumeClaim",
     user("pvc", Z2JH_EXAMPLE, {}, storage_capacity="1Gi", storage_class="standard",
          storage_access_modes=["ReadWriteOnce"],
          storage_selector={"matchLabels": {"user": "{username}"}})),
    ("user-service", "Service", user("service", Z2JH_EXAMPLE, {}, services_enabled=True)),
    ("build-pod-executor-defaults", "Pod", executor()),
    ("build-pod-full", "Pod",
     build(registry_secret="reg", resources={"limits": {"memory": "2Gi", "cpu": "2"}},
           node_selector={"hub.jupyter.org/node-purpose": "user"})),
    ("build-pod-dind", "Pod", build(engine_mode="dind")),
    ("build-pod-host-socket", "Pod", build(engine_mode="host-socket")),
    ("build-pod-no-engine", "Pod", build(engine_mode="none")),
    ("build-pod-podman", "Pod",
     build(engine="podman", user_id=1001, user_name="me", engine_mode="host-socket",
           docker_socket="/run/podman/podman.sock")),
    ("build-networkpolicy", "NetworkPolicy", pure(build_network_policy_manifest, "jhub")),
    ("build-networkpolicy-admin-rules", "NetworkPolicy",
     pure(build_network_policy_manifest, "jhub", allowed_egress=["10.0.5.0/24:5000", "10.1.0.0/16"],
          denied_cidrs=["203.0.113.0/24", "2001:db8::/32"])),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kind", "factory"), OBJECTS, ids=[r[0] for r in OBJECTS])
async def test_object_is_valid_for_every_supported_version(
    name: str, kind: str, factory: Factory
) -> None:
    manifest = await factory()
    assert manifest["kind"] == kind
    assert schema_errors(manifest) == {}


async def test_user_secret_with_internal_ssl(internal_ssl_files: dict[str, str]) -> None:
    """KubeSpawner's Secret (internal_ssl) needs JupyterHub's certificate files: own fixture."""
    from kubespawner.objects import make_owner_reference

    spawner = await _spawner(Z2JH_EXAMPLE, {}, {"internal_ssl": True})
    spawner.cert_paths = internal_ssl_files
    spawner.internal_trust_bundles = {"hub-ca": internal_ssl_files["cafile"]}
    owner = make_owner_reference(spawner.pod_name, "0f1e2d3c-0000-4000-8000-000000000000")
    manifest = as_sent(spawner, spawner.get_secret_manifest(owner))
    service = as_sent(spawner, spawner.get_service_manifest(owner, 8888))
    await spawner.api.api_client.close()
    assert (manifest["kind"], service["kind"]) == ("Secret", "Service")
    assert schema_errors(manifest) == {} and schema_errors(service) == {}


# --- kinds the project creates, and manifests it ships in files or docs -------------------------

KIND_LITERAL = re.compile(r"""["']kind["']\s*:\s*["']([A-Z][A-Za-z]+)["']""")
# created through KubeSpawner (whose code is not in this package), each with a row above
KUBESPAWNER_KINDS = {"Pod", "PersistentVolumeClaim", "Service", "Secret"}


def test_every_kind_in_the_package_has_a_row() -> None:
    """A new `"kind": "X"` literal in fancy_env needs a row in OBJECTS (and a broken row)."""
    found = {
        kind
        for path in (ROOT / "fancy_env").rglob("*.py")
        for kind in KIND_LITERAL.findall(path.read_text())
    }
    covered = {kind for _, kind, _ in OBJECTS} | {"Secret"}  # Secret: its own test above
    assert found, "the scan found no kind at all: has the build pod moved?"
    assert found <= covered, f"kinds without a schema row: {sorted(found - covered)}"
    assert KUBESPAWNER_KINDS <= covered


SKIP_DIRS = {".git", "node_modules", ".venv", "_build", "__pycache__", ".mypy_cache"}


def shipped_manifests(root: Path = ROOT) -> list[tuple[str, Manifest]]:
    """Kubernetes objects in the repository's YAML files and in ```yaml blocks of docs/."""
    texts: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for file in sorted(f for f in files if f.endswith((".yaml", ".yml"))):
            path = Path(folder, file)
            texts.append((str(path.relative_to(root)), path.read_text()))
    for path in sorted((root / "docs").glob("**/*.md")):
        for i, block in enumerate(re.findall(r"```ya?ml\n(.*?)```", path.read_text(), re.S)):
            texts.append((f"{path.relative_to(root)}#yaml{i}", block))
    found = []
    for where, text in texts:
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and {"apiVersion", "kind"} <= doc.keys():
                if doc["kind"] != "Config":  # a kubeconfig, not an API object
                    found.append((where, doc))
    return found


def test_shipped_manifests_are_valid() -> None:
    """A NetworkPolicy, Role or DaemonSet in a YAML file or the guide is checked like the rest."""
    failures = {
        f"{where}:{doc['kind']}": errors
        for where, doc in shipped_manifests()
        if (errors := schema_errors(doc))
    }
    assert failures == {}


def test_shipped_manifests_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "```yaml\n" + yaml.safe_dump(NETWORK_POLICY) + "```\n\n```yaml\nhub: {}\n```\n"
    )
    (tmp_path / "deploy.yaml").write_text(
        "kind: Role\napiVersion: rbac.authorization.k8s.io/v1\n---\nkind: Config\napiVersion: v1\n"
    )
    found = [(where, doc["kind"]) for where, doc in shipped_manifests(tmp_path)]
    assert found == [("deploy.yaml", "Role"), ("docs/guide.md#yaml0", "NetworkPolicy")]


# --- deliberately broken manifests fail, for every version --------------------------------------


def _broken(change: Callable[[Manifest], None], base: Manifest | None = None) -> Manifest:
    import copy

    manifest = copy.deepcopy(base or build_pod_manifest(
        JOB, namespace="jhub", build_image="r2d:1", registry_secret="reg",
        resources={"limits": {"memory": "2Gi"}},
    ))  # fmt: skip
    change(manifest)
    return manifest


def _container(m: Manifest) -> dict[str, Any]:
    container: dict[str, Any] = m["spec"]["containers"][0]
    return container


NETWORK_POLICY: Manifest = {  # the shape of a build-pod egress policy, to break below
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "fancy-env-build", "namespace": "jhub"},
    "spec": {
        "podSelector": {"matchLabels": {"app.kubernetes.io/component": "build"}},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                    "ports": [{"port": 53, "protocol": "UDP"}]}],
    },
}  # fmt: skip

# (id, broken manifest, strict only, what the error must name)
BROKEN: list[tuple[str, Manifest, bool, str]] = [
    ("container-without-name", _broken(lambda m: _container(m).pop("name")), False,
     "spec.containers.0: 'name' is a required property"),
    ("string-for-int", _broken(lambda m: m["spec"].update(activeDeadlineSeconds="3600")), False,
     "spec.activeDeadlineSeconds: '3600' is not of type 'integer', 'null'"),
    ("bool-as-string", _broken(lambda m: m["spec"].update(automountServiceAccountToken="false")),
     False, "spec.automountServiceAccountToken: 'false' is not of type 'boolean', 'null'"),
    ("args-not-a-list", _broken(lambda m: _container(m).update(args="repo2docker --no-run")),
     False, "spec.containers.0.args: 'repo2docker --no-run' is not of type 'array', 'null'"),
    ("env-value-from-without-name",
     _broken(lambda m: _container(m)["env"].insert(0, {"value": "x"})), False,
     "spec.containers.0.env.0: 'name' is a required property"),
    ("unknown-field-typo", _broken(lambda m: _container(m).update(volumeMount=[])), True,
     "spec.containers.0: Additional properties are not allowed ('volumeMount' was unexpected)"),
    ("unknown-field-in-spec", _broken(lambda m: m["spec"].update(nodeselector={"a": "b"})), True,
     "spec: Additional properties are not allowed ('nodeselector' was unexpected)"),
    ("networkpolicy-policytypes-string",
     _broken(lambda m: m["spec"].update(policyTypes="Egress"), NETWORK_POLICY), False,
     "spec.policyTypes: 'Egress' is not of type 'array', 'null'"),
    ("networkpolicy-ipblock-without-cidr",
     _broken(lambda m: m["spec"]["egress"][0]["to"][0]["ipBlock"].pop("cidr"), NETWORK_POLICY),
     False, "spec.egress.0.to.0.ipBlock: 'cidr' is a required property"),
]  # fmt: skip


def test_unbroken_bases_are_valid() -> None:
    assert schema_errors(_broken(lambda m: None)) == {}
    assert schema_errors(NETWORK_POLICY) == {}


def error_text(e: Any) -> str:
    return ".".join(str(p) for p in e.absolute_path) + ": " + e.message


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("name", "manifest", "strict_only", "error"), BROKEN, ids=[r[0] for r in BROKEN]
)
def test_broken_manifest_fails(
    version: str, name: str, manifest: Manifest, strict_only: bool, error: str
) -> None:
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(manifest, version, strict=True)
    assert (caught.value.version, error_text(caught.value)) == (version, error)
    if strict_only:  # without strict mode the same manifest passes: strict is what catches it
        assert kubernetes_validate.validate(manifest, version, strict=False) == version


def _typo(m: Manifest) -> None:
    m["spec"]["containers"][0]["imagePullPolicyy"] = "Always"


# user objects as KubeSpawner builds them, broken by config or by a change: (id, factory,
# change, start of the error for every version)
USER_BROKEN: list[tuple[str, Factory, Callable[[Manifest], None], str]] = [
    ("pod-field-typo", user("pod", Z2JH_EXAMPLE, {}), _typo,
     "spec.containers.0: Additional properties are not allowed ('imagePullPolicyy'"),
    # KubeSpawner builds `requests: {storage: null}`; the API server refuses the claim
    ("pvc-without-capacity", user("pvc", Z2JH_EXAMPLE, {}, storage_pvc_ensure=True),
     lambda m: None, "spec.resources.requests.storage: None is valid under each of"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "factory", "change", "error"), USER_BROKEN, ids=[r[0] for r in USER_BROKEN]
)
async def test_broken_user_object_fails(
    name: str, factory: Factory, change: Callable[[Manifest], None], error: str
) -> None:
    manifest = await factory()
    change(manifest)
    errors = schema_errors(manifest)
    assert sorted(errors) == VERSIONS
    assert all(text.startswith(error) for text in errors.values()), errors
