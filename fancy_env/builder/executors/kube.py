"""The Kubernetes executor: one build pod per image, running `repo2docker --json-logs --no-run`.

The pod name is derived from the image, so a second request for the same image (or the
service after a restart) attaches to the running pod instead of starting another. Registry
credentials come from a Secret (repo2docker reads `CONTAINER_ENGINE_REGISTRY_CREDENTIALS`);
the pod has resource limits, no service-account token, and never restarts.
`build_pod_manifest` is pure and tested against literal dicts; the API calls go through
kubernetes_asyncio (tested against a small fake API server on loopback).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import datetime
from typing import Any

from traitlets import Dict, Float, Int, Unicode, default

from .base import BuildFailed, BuildJob, Emit, Executor, parse_r2d_line

SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def pod_name(image: str) -> str:
    """`fancy-env-build-<16 hex>`: deterministic from the image, a valid DNS label."""
    return "fancy-env-build-" + hashlib.sha256(image.encode("utf-8")).hexdigest()[:16]


def repo2docker_args(job: BuildJob, engine: str, user_id: int, user_name: str) -> list[str]:
    args = [
        "repo2docker", "--engine", engine, "--json-logs", "--no-run",
        "--user-id", str(user_id), "--user-name", user_name,
        "--image-name", job.image, "--ref", job.commit,
    ]  # fmt: skip
    if job.push:
        args.append("--push")
    if job.subdir:
        args += ["--subdir", job.subdir]
    return [*args, job.repo]


def build_pod_manifest(
    job: BuildJob,
    *,
    namespace: str,
    build_image: str,
    engine: str = "docker",
    user_id: int = 1000,
    user_name: str = "jovyan",
    registry_secret: str = "",
    docker_socket: str = "/var/run/docker.sock",
    resources: dict[str, dict[str, str]] | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The build pod for `job` (pure)."""
    env: list[dict[str, Any]] = [{"name": "GIT_ALLOW_PROTOCOL", "value": "https:http"}]
    if registry_secret:
        env.append({
            "name": "CONTAINER_ENGINE_REGISTRY_CREDENTIALS",
            "valueFrom": {"secretKeyRef": {"name": registry_secret, "key": "credentials"}},
        })  # fmt: skip
    container: dict[str, Any] = {
        "name": "builder",
        "image": build_image,
        "args": repo2docker_args(job, engine, user_id, user_name),
        "env": env,
        "resources": resources or {},
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [container],
    }
    if docker_socket:
        container["volumeMounts"] = [{"name": "docker-socket", "mountPath": "/var/run/docker.sock"}]
        spec["volumes"] = [
            {"name": "docker-socket", "hostPath": {"path": docker_socket, "type": "Socket"}}
        ]
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(job.image),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "fancy-env",
                "app.kubernetes.io/component": "build",
            },
            "annotations": {
                "fancy-env/image": job.image,
                "fancy-env/repo": job.repo,
                "fancy-env/commit": job.commit,
            },
        },
        "spec": spec,
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


class KubernetesExecutor(Executor):
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
    docker_socket = Unicode(
        "/var/run/docker.sock",
        help="Node path of the container engine socket mounted into build pods ('' = none; "
        "then build_image must bring its own engine).",
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

    _api: Any = None

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

    def manifest(self, job: BuildJob) -> dict[str, Any]:
        return build_pod_manifest(
            job, namespace=self.namespace, build_image=self.build_image, engine=self.engine,
            user_id=self.user_id, user_name=self.user_name, registry_secret=self.registry_secret,
            docker_socket=self.docker_socket, resources=self.resources,
            node_selector=self.node_selector,
        )  # fmt: skip

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

        api, name = await self.api(), pod_name(job.image)
        try:
            await api.create_namespaced_pod(self.namespace, self.manifest(job))
            emit("fetching", f"Started build pod {name}")
        except ApiException as e:
            if e.status != 409:
                raise BuildFailed(f"could not create the build pod: {e.reason}") from None
            emit("fetching", f"Attached to the running build pod {name}")
        try:
            await self._wait_started(name, emit)
            await self._stream_logs(name, job, emit)
            phase = await self._wait_finished(name)
        except asyncio.CancelledError:
            if not self.shutting_down:
                await self._delete(name)
            raise
        await self._delete(name)
        if phase != "Succeeded":
            raise BuildFailed(f"build pod {name} ended with phase {phase}")

    async def _wait_started(self, name: str, emit: Emit) -> None:
        # one line only: a pod stuck in Pending (say, an image pull error) then trips the
        # silence timeout instead of waiting for the total timeout
        if (phase := await self._phase(name)) == "Pending":
            emit("fetching", f"Waiting for build pod {name} to start")
        while phase == "Pending":
            await asyncio.sleep(self.poll_interval)
            phase = await self._phase(name)
        if phase is None:
            raise BuildFailed(f"build pod {name} disappeared")

    async def _stream_logs(self, name: str, job: BuildJob, emit: Emit) -> None:
        api = await self.api()
        response = await api.read_namespaced_pod_log(
            name, self.namespace, follow=True, timestamps=True, _preload_content=False
        )
        phase = "fetching"
        try:
            async for raw in response.content:
                when, line = split_timestamp(raw.decode("utf-8", "replace").rstrip("\n"))
                if job.resume_after and when and when <= job.resume_after:
                    continue
                phase, message, failed = parse_r2d_line(line, phase)
                if message.strip():
                    emit(phase, message)
        finally:
            response.release()

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
