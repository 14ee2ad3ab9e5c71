"""A repo2docker container engine that builds through the Docker API (no buildx needed).

repo2docker's own engine shells out to `docker buildx`, which Debian's docker.io lacks. This
engine talks to the engine's API instead (`DOCKER_HOST`, so podman's socket works too),
builds with host networking (engines here run with `--bridge=none`), and pushes through the
API when repo2docker asks for `--push`. Registered as the `repo2docker.engines` entry point
`docker-api`: `repo2docker --engine docker-api ...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
from repo2docker.engine import BuildError, Container, ContainerEngine, Image, ImageLoadError
from traitlets import Dict, Unicode

PUSH_MARKER = "[fancy-env] pushing "


class DockerAPIContainer(Container):
    def __init__(self, container: Any) -> None:
        self._c = container

    def reload(self) -> Any:
        return self._c.reload()

    def logs(self, *, stream: bool = False, timestamps: bool = False, since: Any = None) -> Any:
        return self._c.logs(stream=stream, timestamps=timestamps)

    def kill(self, *, signal: str = "KILL") -> Any:
        return self._c.kill(signal=signal)

    def remove(self) -> Any:
        return self._c.remove()

    def stop(self, *, timeout: int = 10) -> Any:
        return self._c.stop(timeout=timeout)

    def wait(self) -> Any:
        return self._c.wait()

    @property
    def exitcode(self) -> int:
        return int(self._c.attrs["State"]["ExitCode"])

    @property
    def status(self) -> str:
        return str(self._c.status)


class DockerAPIEngine(ContainerEngine):
    """Build, inspect, push and run through the Docker Engine API."""

    string_output = True

    network_mode = Unicode(
        "host",
        help="Network mode of build containers. 'host' works with engines that have no bridge.",
        config=True,
    )
    extra_init_args = Dict(
        {}, help="Extra arguments for docker.APIClient (merged with the environment).", config=True
    )

    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            kwargs = docker.utils.kwargs_from_env()
            kwargs.update(self.extra_init_args)
            kwargs.setdefault("version", "auto")
            self._client = docker.APIClient(**kwargs)
        return self._client

    def build(
        self,
        *,
        push: bool = False,
        load: bool = False,
        buildargs: dict[str, str] | None = None,
        cache_from: list[str] | None = None,
        container_limits: dict[str, Any] | None = None,
        tag: str = "",
        custom_context: bool = False,
        dockerfile: str = "",
        fileobj: Any = None,
        path: str = "",
        labels: dict[str, str] | None = None,
        platform: str | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        stream = self.client.build(
            path=path or None, fileobj=fileobj, custom_context=custom_context,
            dockerfile=dockerfile or None, tag=tag, buildargs=buildargs or {},
            cache_from=cache_from or None, container_limits=container_limits or {},
            labels=labels or None, platform=platform, network_mode=self.network_mode,
            decode=True, rm=True, forcerm=True,
        )  # fmt: skip
        for chunk in stream:
            if "error" in chunk:
                raise BuildError(str(chunk["error"]).strip())
            if "stream" in chunk:
                yield str(chunk["stream"])
            elif "status" in chunk:
                yield f"{chunk['status']} {chunk.get('progress', '')}".rstrip() + "\n"
        if push:
            yield from self.push(tag)

    def push(self, image: str) -> Iterator[str]:
        repository, _, tag = image.rpartition(":")
        if "/" in tag or not repository:
            repository, tag = image, "latest"
        yield f"{PUSH_MARKER}{image}\n"
        auth = None
        if self.registry_credentials:
            creds = self.registry_credentials
            auth = {"username": creds["username"], "password": creds["password"]}
        last = ""
        for chunk in self.client.push(
            repository, tag=tag, stream=True, decode=True, auth_config=auth
        ):
            if "error" in chunk:
                raise ImageLoadError(str(chunk["error"]).strip())
            status = str(chunk.get("status", ""))
            if status and status != last and "id" not in chunk:
                last = status
                yield status + "\n"
        yield f"Pushed {image}\n"

    def inspect_image(self, image: str) -> Image | None:
        try:
            data = self.client.inspect_image(image)
        except docker.errors.ImageNotFound:
            return None
        config = data.get("Config") or {}
        config.setdefault("WorkingDir", "")
        return Image(tags=data.get("RepoTags") or [], config=config)

    def run(
        self,
        image_spec: str,
        *,
        command: list[str] | None = None,
        environment: list[str] | None = None,
        ports: dict[str, Any] | None = None,
        publish_all_ports: bool = False,
        remove: bool = False,
        volumes: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> DockerAPIContainer:
        client = docker.from_env(version="auto")
        kwargs.setdefault("network_mode", self.network_mode)
        container = client.containers.run(
            image_spec, command=command, environment=environment or [], detach=True,
            ports=ports or {}, publish_all_ports=publish_all_ports, remove=remove,
            volumes=volumes or {}, **kwargs,
        )  # fmt: skip
        return DockerAPIContainer(container)
