"""A small fake Kubernetes API on loopback: just the calls the build executor makes (pods,
their log, and the build pods' NetworkPolicy).

    api = FakeKubeAPI(log_lines=[...], final_phase="Succeeded"); await api.start()
    KubernetesExecutor(api_url=api.url, namespace="ns")

A mock (no Kubernetes API server can run here), not Kubernetes: pods go Pending -> Running
on the first read; the log stream writes `log_lines` (with kubectl-style timestamps)
`line_delay` apart and then sets the pod to `final_phase`. A pod with a `fetch` init
container stays Pending (that container running) until its log (`?container=fetch`) was
read: it writes `fetch_lines`, then the container terminates with `fetch_exit` (its message
the last line, as `terminationMessagePolicy: FallbackToLogsOnError` does) and a non-zero exit
fails the pod, as an init container's failure does with `restartPolicy: Never`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from .net import free_port


@dataclass
class FakeKubeAPI:
    log_lines: list[str] = field(default_factory=list)
    final_phase: str = "Succeeded"
    fetch_lines: list[str] = field(default_factory=list)
    fetch_exit: int = 0
    log_requests: list[str] = field(default_factory=list)  # container names, in order
    line_delay: float = 0.01
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    created_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    line_times: list[float] = field(default_factory=list)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy_calls: list[str] = field(default_factory=list)  # "create <name>" / "replace <name>"
    policy_refusal: int = 0  # e.g. 403: answer every NetworkPolicy call with this status
    port: int = 0
    server: HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeKubeAPI:
        self.port = self.port or free_port()
        pod = r"/api/v1/namespaces/([^/]+)/pods"
        policies = r"/apis/networking.k8s.io/v1/namespaces/([^/]+)/networkpolicies"
        app = Application(
            [
                (pod, PodsHandler, {"api": self}),
                (pod + r"/([^/]+)", PodHandler, {"api": self}),
                (pod + r"/([^/]+)/log", LogHandler, {"api": self}),
                (policies, PoliciesHandler, {"api": self}),
                (policies + r"/([^/]+)", PolicyHandler, {"api": self}),
            ]
        )
        self.server = HTTPServer(app)
        self.server.listen(self.port, "127.0.0.1")
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class Base(RequestHandler):
    def initialize(self, api: FakeKubeAPI) -> None:
        self.api = api

    def status(self, code: int, reason: str) -> None:
        self.set_status(code)
        self.finish({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                     "reason": reason, "code": code})  # fmt: skip

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.api.pods.get(name)


class PodsHandler(Base):
    def post(self, namespace: str) -> None:
        body = json.loads(self.request.body)
        name = body["metadata"]["name"]
        if name in self.api.pods:
            return self.status(409, "AlreadyExists")
        body["status"] = {"phase": "Pending"}
        inits = [c["name"] for c in body["spec"].get("initContainers", [])]
        if "fetch" in inits:
            body["status"]["initContainerStatuses"] = [container_status("fetch", running={})]
        self.api.pods[name] = body
        self.api.created.append(name)
        self.api.created_bodies[name] = json.loads(self.request.body)
        self.set_status(201)
        self.finish(body)


def container_status(name: str, **state: Any) -> dict[str, Any]:
    return {"name": name, "image": "r2d", "imageID": "", "ready": False, "restartCount": 0,
            "state": state}  # fmt: skip


def fetch_running(pod: dict[str, Any]) -> bool:
    statuses = pod["status"].get("initContainerStatuses", [])
    return any(s["name"] == "fetch" and "running" in s["state"] for s in statuses)


class PodHandler(Base):
    def get(self, namespace: str, name: str) -> None:
        pod = self.pod(name)
        if pod is None:
            return self.status(404, "NotFound")
        if pod["status"]["phase"] == "Pending" and not fetch_running(pod):
            pod["status"]["phase"] = "Running"
            self.finish({**pod, "status": {"phase": "Pending"}})
            return
        self.finish(pod)

    def delete(self, namespace: str, name: str) -> None:
        pod = self.api.pods.pop(name, None)
        if pod is None:
            return self.status(404, "NotFound")
        self.api.deleted.append(name)
        self.finish(pod)


class LogHandler(Base):
    async def get(self, namespace: str, name: str) -> None:
        pod = self.pod(name)
        if pod is None:
            return self.status(404, "NotFound")
        self.set_header("Content-Type", "text/plain")
        container = self.get_query_argument("container", "builder")
        self.api.log_requests.append(container)
        if container == "fetch":
            return await self.fetch_log(name, pod)
        for i, line in enumerate(self.api.log_lines):
            if i == len(self.api.line_times):  # a pod's log keeps its first timestamps
                self.api.line_times.append(time.time())
            now = self.api.line_times[i]
            stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
            self.write(f"{stamp} {line}\n")
            await self.flush()
            await asyncio.sleep(self.api.line_delay)
        if name in self.api.pods:
            pod["status"]["phase"] = self.api.final_phase
        self.finish()

    async def fetch_log(self, name: str, pod: dict[str, Any]) -> None:
        for line in self.api.fetch_lines:
            stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
            self.write(f"{stamp} {line}\n")
            await self.flush()
        if fetch_running(pod):
            code = self.api.fetch_exit
            ended = {
                "exitCode": code,
                "reason": "Error" if code else "Completed",
                "message": self.api.fetch_lines[-1] if code and self.api.fetch_lines else "",
            }
            pod["status"]["initContainerStatuses"] = [container_status("fetch", terminated=ended)]
            if code:
                pod["status"]["phase"] = "Failed"
        self.finish()


class PoliciesHandler(Base):
    def post(self, namespace: str) -> None:
        if self.api.policy_refusal:
            return self.status(self.api.policy_refusal, "Forbidden")
        body = json.loads(self.request.body)
        name = body["metadata"]["name"]
        self.api.policy_calls.append(f"create {name}")
        if name in self.api.policies:
            return self.status(409, "AlreadyExists")
        self.api.policies[name] = body
        self.set_status(201)
        self.finish(body)


class PolicyHandler(Base):
    def put(self, namespace: str, name: str) -> None:
        if self.api.policy_refusal:
            return self.status(self.api.policy_refusal, "Forbidden")
        self.api.policy_calls.append(f"replace {name}")
        if name not in self.api.policies:
            return self.status(404, "NotFound")
        self.api.policies[name] = json.loads(self.request.body)
        self.finish(self.api.policies[name])


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.support.fake_k8s --port P --lines N --delay S`: run it as a process."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--final", default="Succeeded")
    args = parser.parse_args(argv)
    lines = [
        json.dumps({"message": f"Step {i + 1}/{args.lines} : RUN fake\n", "phase": "building"})
        for i in range(args.lines)
    ]

    async def serve() -> None:
        api = FakeKubeAPI(log_lines=lines, final_phase=args.final, line_delay=args.delay)
        api.port = args.port
        await api.start()
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
