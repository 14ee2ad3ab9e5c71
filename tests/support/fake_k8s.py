"""A small fake Kubernetes API on loopback: just the calls the build executor makes (pods,
their log, and the build pods' NetworkPolicy).

    api = FakeKubeAPI(log_lines=[...], final_phase="Succeeded"); await api.start()
    KubernetesExecutor(api_url=api.url, namespace="ns")

Pods go Pending -> Running on the first read; the log stream writes `log_lines` (with
kubectl-style timestamps) `line_delay` apart and then sets the pod to `final_phase`.
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
    line_delay: float = 0.01
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
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
        self.api.pods[name] = body
        self.api.created.append(name)
        self.set_status(201)
        self.finish(body)


class PodHandler(Base):
    def get(self, namespace: str, name: str) -> None:
        pod = self.pod(name)
        if pod is None:
            return self.status(404, "NotFound")
        if pod["status"]["phase"] == "Pending":
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
