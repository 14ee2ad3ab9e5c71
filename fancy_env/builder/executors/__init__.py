"""Executors run one build each: Docker (local engine), Kubernetes (build pods), Fake."""

from .base import BuildFailed, BuildJob, Executor

EXECUTORS = {
    "docker": "fancy_env.builder.executors.docker:DockerExecutor",
    "kubernetes": "fancy_env.builder.executors.kube:KubernetesExecutor",
    "fake": "fancy_env.builder.executors.fake:FakeExecutor",
}

__all__ = ["EXECUTORS", "BuildFailed", "BuildJob", "Executor"]
