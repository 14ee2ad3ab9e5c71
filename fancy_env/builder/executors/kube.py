"""The Kubernetes executor: one build pod per image, running `repo2docker --json-logs --no-run`.

The pod name is derived from the image, so a second request for the same image (or the
service after a restart) attaches to the running pod instead of starting another. Registry
credentials come from a Secret (repo2docker reads `CONTAINER_ENGINE_REGISTRY_CREDENTIALS`);
the pod has resource limits, no service-account token, and never restarts.

Where RUN steps run (`engine_mode`): "dind" (default) gives the pod a Docker-in-Docker
sidecar whose socket is shared over an emptyDir, so RUN steps stay in the pod's network
namespace and under the build pods' NetworkPolicy (`build_network_policy_manifest`: egress
to public addresses and kube-dns only, no ingress), which the executor creates or updates
before its first build. "host-socket" mounts the node's engine socket: RUN steps then run on
the node's Docker network, outside any pod policy (see docs/build-pods.md).
The manifest functions are pure and tested against literal dicts; the API calls go through
kubernetes_asyncio (tested against a small fake API server on loopback).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, default, validate

from ...repos import RepoPolicy
from ..checkout import Resolver, approve, resolve_host
from ..confine import CheckoutError
from ..forge_auth import executor_refusal
from .base import BuildFailed, BuildJob, Emit, Executor, parse_r2d_line
from .kube_fetch import (
    BUILDER_MOUNT,
    FETCH_CONTAINER,
    checkout_volume,
    fetch_container,
    local_context,
)
from .kube_policy import (
    BUILD_LABELS,
    DENIED_V4,
    DENIED_V6,
    POLICY_NAME,
    build_network_policy_manifest,
    parse_egress_entry,
)
from .layercache import LayerCacheConfig, cache_from_args, cache_sources

__all__ = [
    "DENIED_V4", "DENIED_V6", "KubernetesExecutor", "build_network_policy_manifest",
    "build_pod_manifest", "parse_egress_entry", "pod_name", "repo2docker_args",
]  # fmt: skip
SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
DIND_SOCKET_DIR = "/var/run/dind"
DIND_HOST = f"unix://{DIND_SOCKET_DIR}/docker.sock"
ENGINE_MODES = ("dind", "host-socket", "none")


def pod_name(image: str) -> str:
    """`fancy-env-build-<16 hex>`: deterministic from the image, a valid DNS label."""
    return "fancy-env-build-" + hashlib.sha256(image.encode("utf-8")).hexdigest()[:16]


def repo2docker_args(
    job: BuildJob, engine: str, user_id: int, user_name: str, cache_from: Sequence[str] = ()
) -> list[str]:
    """repo2docker on the fetched local directory (`/work/src/<subdir>`): the Local content
    provider, so no clone, no `--ref` (the fetch checked out the commit), no `--subdir`.
    `cache_from`: the layer-cache images (`--cache-from`, see layercache)."""
    args = [
        "repo2docker", "--engine", engine, "--json-logs", "--no-run",
        "--user-id", str(user_id), "--user-name", user_name, "--image-name", job.image,
    ]  # fmt: skip
    if job.push:
        args.append("--push")
    return [*args, *cache_from_args(cache_from), local_context(job.subdir)]


def dind_sidecar(image: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Docker-in-Docker sidecar (a native sidecar: an init container that keeps running
    and is stopped when the builder exits; Kubernetes >= 1.29). It listens on a unix socket
    in a shared emptyDir only: RUN steps, on its bridge inside the pod, cannot reach it."""
    return {
        "name": "dind",
        "image": image,
        "restartPolicy": "Always",
        # first arg `dockerd`: the image's entrypoint adds no TCP listener of its own
        "args": ["dockerd", f"--host={DIND_HOST}"],
        "env": [{"name": "DOCKER_TLS_CERTDIR", "value": ""}],
        "securityContext": {"privileged": True},
        "resources": resources or {},
        "startupProbe": {
            "exec": {"command": ["docker", f"--host={DIND_HOST}", "info"]},
            "periodSeconds": 1,
            "failureThreshold": 120,
        },
        "volumeMounts": [
            {"name": "dind-socket", "mountPath": DIND_SOCKET_DIR},
            {"name": "dind-storage", "mountPath": "/var/lib/docker"},
        ],
    }


def _engine_parts(
    engine_mode: str, docker_socket: str, dind_image: str, dind_resources: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(builder env, builder mounts, pod volumes, init containers) for an engine mode."""
    if engine_mode == "dind":
        return (
            [{"name": "DOCKER_HOST", "value": DIND_HOST}],
            [{"name": "dind-socket", "mountPath": DIND_SOCKET_DIR}],
            [{"name": "dind-socket", "emptyDir": {}}, {"name": "dind-storage", "emptyDir": {}}],
            [dind_sidecar(dind_image, dind_resources)],
        )
    if engine_mode == "host-socket" and docker_socket:
        return (
            [],
            [{"name": "docker-socket", "mountPath": "/var/run/docker.sock"}],
            [{"name": "docker-socket", "hostPath": {"path": docker_socket, "type": "Socket"}}],
            [],
        )
    return [], [], [], []


def builder_env(engine_env: list[dict[str, Any]], registry_secret: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "GIT_ALLOW_PROTOCOL", "value": "https:http"}, *engine_env]
    if registry_secret:
        env.append({
            "name": "CONTAINER_ENGINE_REGISTRY_CREDENTIALS",
            "valueFrom": {"secretKeyRef": {"name": registry_secret, "key": "credentials"}},
        })  # fmt: skip
    return env


def build_pod_manifest(
    job: BuildJob,
    *,
    namespace: str,
    build_image: str,
    engine: str = "docker",
    user_id: int = 1000,
    user_name: str = "jovyan",
    registry_secret: str = "",
    engine_mode: str = "dind",
    docker_socket: str = "/var/run/docker.sock",
    dind_image: str = "docker:27-dind",
    dind_resources: dict[str, Any] | None = None,
    resources: dict[str, dict[str, str]] | None = None,
    node_selector: dict[str, str] | None = None,
    pin: list[str] | None = None,
    fetch_user_id: int = 65534,
    fetch_timeout: float = 600,
    checkout_size_limit: str = "",
    cache_from: Sequence[str] = (),
) -> dict[str, Any]:
    """The build pod for `job` (pure). `engine_mode`: "dind" (a sidecar engine in the pod),
    "host-socket" (the node's `docker_socket`), "none" (`build_image` brings its own).
    The `fetch` init container clones first (`pin`: the git options the service's approval
    returned), then the builder builds the local checkout (see kube_fetch); `cache_from`:
    the layer-cache images handed to repo2docker (`--cache-from`)."""
    if engine_mode not in ENGINE_MODES:
        raise ValueError(f"engine_mode {engine_mode!r} is not one of {', '.join(ENGINE_MODES)}")
    engine_env, mounts, volumes, init = _engine_parts(
        engine_mode, docker_socket, dind_image, dind_resources
    )
    fetch = fetch_container(
        job, image=build_image, pin=pin or [], run_as=fetch_user_id, timeout=fetch_timeout,
        resources=resources,
    )  # fmt: skip
    init = [fetch, *init]
    mounts = [BUILDER_MOUNT, *mounts]
    volumes = [checkout_volume(checkout_size_limit), *volumes]
    container: dict[str, Any] = {
        "name": "builder",
        "image": build_image,
        "args": repo2docker_args(job, engine, user_id, user_name, cache_from),
        "env": builder_env(engine_env, registry_secret),
        "resources": resources or {},
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
    }
    container["volumeMounts"] = mounts
    spec["volumes"] = volumes
    spec["initContainers"] = init
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    metadata = pod_metadata(job, namespace)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def pod_metadata(job: BuildJob, namespace: str) -> dict[str, Any]:
    return {
        "name": pod_name(job.image),
        "namespace": namespace,
        "labels": dict(BUILD_LABELS),
        "annotations": {
            "fancy-env/image": job.image,
            "fancy-env/repo": job.repo,
            "fancy-env/commit": job.commit,
        },
    }


def split_timestamp(line: str) -> tuple[float, str]:
    """`2024-01-01T00:00:00.123456789Z message` (kubectl logs --timestamps) -> (time, message)."""
    stamp, _, message = line.partition(" ")
    try:
        seconds, _, fraction = stamp.rstrip("Z").partition(".")
        when = datetime.fromisoformat(seconds + "+00:00").timestamp()
        return when + float(f"0.{fraction or 0}"), message
    except ValueError:
        return 0.0, line


class KubernetesExecutor(LayerCacheConfig, Executor):
    name = "kubernetes"
    can_adopt = True

    namespace = Unicode(help="Namespace of build pods (default: the service's own).").tag(
        config=True
    )
    build_image = Unicode(
        "quay.io/jupyterhub/repo2docker:2026.4.0",
        help="Image with repo2docker that build pods run.",
    ).tag(config=True)
    engine = Unicode("docker", help="repo2docker --engine inside the build pod.").tag(config=True)
    user_id = Int(1000, help="--user-id passed to repo2docker.").tag(config=True)
    user_name = Unicode("jovyan", help="--user-name passed to repo2docker.").tag(config=True)
    registry_secret = Unicode(
        "",
        help="Secret with key `credentials`: JSON {registry, username, password} for pushing.",
    ).tag(config=True)
    engine_mode = Unicode(
        "dind",
        help="Where RUN steps run. 'dind': a Docker-in-Docker sidecar (`dind_image`, "
        "privileged) in the build pod, so RUN steps stay in the pod's network and under the "
        "build NetworkPolicy. 'host-socket': the node's engine socket (`docker_socket`) is "
        "mounted: no privileged pod, but RUN steps run on the node's Docker network, outside "
        "any pod policy (they reach what the node reaches: other pods, node ports, cloud "
        "metadata), and the socket is root on the node. 'none': `build_image` brings its own "
        "engine (e.g. rootless BuildKit).",
    ).tag(config=True)
    docker_socket = Unicode(
        "/var/run/docker.sock",
        help="Node path of the container engine socket mounted with engine_mode='host-socket' "
        "('' = none; then build_image must bring its own engine).",
    ).tag(config=True)
    dind_image = Unicode(
        "docker:27-dind",
        help="Image of the Docker-in-Docker sidecar (engine_mode='dind'); pin a digest.",
    ).tag(config=True)
    dind_resources = Dict(
        {"limits": {"memory": "4Gi", "cpu": "2"}, "requests": {"memory": "512Mi", "cpu": "0.5"}},
        help="Resource requests and limits of the dind sidecar (it runs the RUN steps).",
    ).tag(config=True)
    network_policy = Bool(
        True,
        help="Create (or update) the NetworkPolicy `fancy-env-build` for build pods before the "
        "first build: no ingress, egress to kube-dns and public addresses only. Needs "
        "create/update on networkpolicies in the namespace; when it cannot be made, builds "
        "fail (closed). False: you apply the policy yourself (docs/kubernetes.md). A policy "
        "needs a CNI that enforces NetworkPolicy (Calico, Cilium, ...).",
    ).tag(config=True)
    allowed_egress = List(
        Unicode(),
        help="Private destinations build pods may reach although private ranges are denied: "
        "'CIDR' or 'CIDR:port' (TCP), e.g. an in-cluster registry or package mirror. RUN "
        "steps reach them too.",
    ).tag(config=True)
    denied_cidrs = List(
        Unicode(),
        help="Extra CIDRs build pods may never reach, e.g. your nodes' or pods' ranges when "
        "they are public addresses.",
    ).tag(config=True)
    dns_namespace = Unicode(
        "kube-system", help="Namespace of the cluster DNS pods build pods may ask."
    ).tag(config=True)
    dns_pod_labels = Dict(
        {"k8s-app": "kube-dns"}, help="Labels of the cluster DNS pods (CoreDNS keeps kube-dns)."
    ).tag(config=True)
    resources = Dict(
        {"limits": {"memory": "4Gi", "cpu": "2"}, "requests": {"memory": "1Gi", "cpu": "0.5"}},
        help="Resource requests and limits of the build container.",
    ).tag(config=True)
    node_selector = Dict(help="Node selector of build pods.").tag(config=True)
    api_url = Unicode(
        "",
        help="Kubernetes API URL without credentials (e.g. `kubectl proxy` on loopback). Empty: "
        "in-cluster config, else the kubeconfig.",
    ).tag(config=True)
    poll_interval = Float(1.0, help="Seconds between pod status checks.").tag(config=True)
    fetch_user_id = Int(
        65534,
        help="uid (and gid) the build pod's `fetch` init container runs git as (non-root; "
        "the checkout emptyDir is world-writable, the builder mounts it read-only).",
    ).tag(config=True)
    fetch_timeout = Float(
        600, help="Seconds one git command of the in-pod fetch (clone, checkout) may take."
    ).tag(config=True)
    checkout_size_limit = Unicode(
        "10Gi",
        help="sizeLimit of the build pod's checkout emptyDir (the kubelet evicts a pod whose "
        "checkout grows beyond it); '' = no limit.",
    ).tag(config=True)
    allow_submodules = Bool(
        False,
        help="Not supported with build pods: each submodule URL must pass the service's host "
        "policy before it is fetched, and that check runs in the service, not the pod. "
        "Submodules stay off (the build log says so); True is refused at start.",
    ).tag(config=True)

    repo_policy: RepoPolicy = RepoPolicy()  # set by the app (the service's host policy)
    resolver: Resolver = staticmethod(resolve_host)
    _api: Any = None
    _policy_ready = False

    @validate("allow_submodules")
    def _no_submodules(self, proposal: Any) -> bool:
        if proposal.value:
            raise TraitError(
                "KubernetesExecutor.allow_submodules=True is not supported: submodule URLs "
                "are checked by the service's host policy, which does not run in build pods. "
                "Submodules stay off with the Kubernetes executor (use the Docker executor's "
                "allow_submodules, or vendor the submodules into the repository)."
            )
        return False

    @validate("engine_mode")
    def _valid_engine_mode(self, proposal: Any) -> str:
        if proposal.value not in ENGINE_MODES:
            raise TraitError(f"engine_mode must be one of {', '.join(ENGINE_MODES)}")
        return str(proposal.value)

    @validate("allowed_egress", "denied_cidrs")
    def _valid_cidrs(self, proposal: Any) -> list[str]:
        for entry in proposal.value:
            try:
                _, port = parse_egress_entry(entry)
            except ValueError as e:
                raise TraitError(str(e)) from None
            if proposal.trait.name == "denied_cidrs" and port is not None:
                raise TraitError(f"denied_cidrs entry {entry!r} takes no port")
        return list(proposal.value)

    @default("namespace")
    def _namespace(self) -> str:
        try:
            with open(SA_NAMESPACE) as f:
                return f.read().strip()
        except OSError:
            return os.environ.get("POD_NAMESPACE", "default")

    async def api(self) -> Any:
        if self._api is None:
            from kubernetes_asyncio import client, config

            if self.api_url:
                configuration = client.Configuration(host=self.api_url)
            else:
                configuration = client.Configuration()
                try:
                    config.load_incluster_config(client_configuration=configuration)
                except config.ConfigException:
                    await config.load_kube_config(client_configuration=configuration)
            self._api = client.CoreV1Api(client.ApiClient(configuration))
        return self._api

    def manifest(self, job: BuildJob, pin: list[str] | None = None) -> dict[str, Any]:
        return build_pod_manifest(
            job, namespace=self.namespace, build_image=self.build_image, engine=self.engine,
            user_id=self.user_id, user_name=self.user_name, registry_secret=self.registry_secret,
            engine_mode=self.engine_mode, docker_socket=self.docker_socket,
            dind_image=self.dind_image, dind_resources=self.dind_resources,
            resources=self.resources, node_selector=self.node_selector, pin=pin,
            fetch_user_id=self.fetch_user_id, fetch_timeout=self.fetch_timeout,
            checkout_size_limit=self.checkout_size_limit,
            cache_from=cache_sources(job, self.layer_cache, self.layer_cache_images),
        )  # fmt: skip

    async def approved_pin(self, job: BuildJob) -> list[str]:
        """Check the URL with the service's policy, resolve its host once, and return the
        git options that pin the approved address (BuildFailed names the refusal)."""
        try:
            return await approve(job.repo, self.repo_policy, self.resolver)
        except CheckoutError as e:
            raise BuildFailed(e.reason) from None

    def policy(self) -> dict[str, Any]:
        return build_network_policy_manifest(
            self.namespace, allowed_egress=self.allowed_egress, denied_cidrs=self.denied_cidrs,
            dns_namespace=self.dns_namespace, dns_pod_labels=self.dns_pod_labels,
        )  # fmt: skip

    async def ensure_policy(self) -> None:
        """Create the build pods' NetworkPolicy, or replace it if it exists (the admin's
        allowed_egress may have changed); once per process. Raises BuildFailed (closed)."""
        if not self.network_policy or self._policy_ready:
            return
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        api: Any = client.NetworkingV1Api((await self.api()).api_client)
        body = self.policy()
        try:
            try:
                await api.create_namespaced_network_policy(self.namespace, body)
            except ApiException as e:
                if e.status != 409:
                    raise
                await api.replace_namespaced_network_policy(POLICY_NAME, self.namespace, body)
        except ApiException as e:
            raise BuildFailed(
                f"could not create the NetworkPolicy {POLICY_NAME} for build pods ({e.reason}): "
                "grant the service create/update on networkpolicies, or apply it yourself and "
                "set KubernetesExecutor.network_policy = False"
            ) from None
        self._policy_ready = True

    async def is_running(self, job: BuildJob) -> bool:
        phase = await self._phase(pod_name(job.image))
        return phase in ("Pending", "Running")

    async def _phase(self, name: str) -> str | None:
        from kubernetes_asyncio.client.exceptions import ApiException

        api = await self.api()
        try:
            pod = await api.read_namespaced_pod(name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return str(pod.status.phase) if pod.status and pod.status.phase else "Pending"

    async def run(self, job: BuildJob, emit: Emit) -> None:
        from kubernetes_asyncio.client.exceptions import ApiException

        if job.private:  # never reached through the service (it refuses first): a backstop
            raise BuildFailed(executor_refusal(self.name))
        api, name = await self.api(), pod_name(job.image)
        await self.ensure_policy()
        created = False
        if await self._phase(name) is None:  # an existing pod is adopted, never fetched again
            pin = await self.approved_pin(job)
            try:
                await api.create_namespaced_pod(self.namespace, self.manifest(job, pin))
                created = True
            except ApiException as e:
                if e.status != 409:
                    raise BuildFailed(f"could not create the build pod: {e.reason}") from None
        emit("fetching", f"{'Started' if created else 'Attached to the running'} build pod {name}")
        try:
            await self._follow_fetch(name, job, emit)
            await self._wait_started(name, emit)
            await self._stream_logs(name, job, emit, "builder")
            phase = await self._wait_finished(name)
        except BaseException:
            if not self.shutting_down:
                await self._delete(name)
            raise
        await self._delete(name)
        if phase != "Succeeded":
            raise BuildFailed(f"build pod {name} ended with phase {phase}")

    async def _read(self, name: str) -> Any:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            return await (await self.api()).read_namespaced_pod(name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                raise BuildFailed(f"build pod {name} disappeared") from None
            raise

    async def _fetch_state(self, name: str) -> tuple[str, Any, bool]:
        """(pod phase, the fetch container's state or None, whether the pod has one)."""
        pod = await self._read(name)
        phase = str(pod.status.phase) if pod.status and pod.status.phase else "Pending"
        inits = (pod.spec.init_containers or []) if pod.spec else []
        has_fetch = any(c.name == FETCH_CONTAINER for c in inits)
        statuses = (pod.status.init_container_statuses or []) if pod.status else []
        state = next((c.state for c in statuses if c.name == FETCH_CONTAINER), None)
        return phase, state, has_fetch

    async def _follow_fetch(self, name: str, job: BuildJob, emit: Emit) -> None:
        """Stream the `fetch` init container's log; BuildFailed with its refusal."""
        phase, state, has_fetch = await self._fetch_state(name)
        if not has_fetch:
            return  # a pod made before build pods fetched: nothing to follow
        if phase == "Pending" and not (state and (state.running or state.terminated)):
            emit("fetching", f"Waiting for build pod {name} to start")
        while phase == "Pending" and not (state and (state.running or state.terminated)):
            await asyncio.sleep(self.poll_interval)
            phase, state, _ = await self._fetch_state(name)
        failure = await self._stream_logs(name, job, emit, FETCH_CONTAINER)
        while phase == "Pending" and not (state and state.terminated):
            await asyncio.sleep(self.poll_interval)
            phase, state, _ = await self._fetch_state(name)
        ended = state.terminated if state else None
        if ended is not None and ended.exit_code:
            message = (ended.message or "").strip().splitlines()
            fallback = parse_r2d_line(message[-1], "fetching")[1] if message else ""
            raise BuildFailed(failure or fallback or f"the fetch exited with {ended.exit_code}")
        if ended is None and phase == "Failed" and failure:
            raise BuildFailed(failure)

    async def _wait_started(self, name: str, emit: Emit) -> None:
        # one line only: a pod stuck in Pending (say, an image pull error) then trips the
        # silence timeout instead of waiting for the total timeout
        if (phase := await self._phase(name)) == "Pending":
            emit("fetching", f"Waiting for the builder of pod {name} to start")
        while phase == "Pending":
            await asyncio.sleep(self.poll_interval)
            phase = await self._phase(name)
        if phase is None:
            raise BuildFailed(f"build pod {name} disappeared")

    async def _stream_logs(self, name: str, job: BuildJob, emit: Emit, container: str) -> str:
        """Emit the container's log lines (after `job.resume_after`); the failure line."""
        api = await self.api()
        response = await api.read_namespaced_pod_log(
            name, self.namespace, container=container, follow=True, timestamps=True,
            _preload_content=False,
        )  # fmt: skip
        phase, failure = "fetching", ""
        try:
            async for raw in response.content:
                when, line = split_timestamp(raw.decode("utf-8", "replace").rstrip("\n"))
                if job.resume_after and when and when <= job.resume_after:
                    continue
                phase, message, failed = parse_r2d_line(line, phase)
                if failed and message.strip():
                    failure = message.strip().splitlines()[0]
                if message.strip():
                    emit(phase, message)
        finally:
            response.release()
        return failure

    async def _wait_finished(self, name: str) -> str:
        while (phase := await self._phase(name)) in ("Pending", "Running"):  # noqa: ASYNC110
            await asyncio.sleep(self.poll_interval)
        return phase or "Unknown"

    async def _delete(self, name: str) -> None:
        from kubernetes_asyncio.client.exceptions import ApiException

        api = await self.api()
        try:
            await api.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        except ApiException as e:
            if e.status != 404:
                self.log.warning("could not delete build pod %s: %s", name, e.reason)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.api_client.close()
