"""A repo2docker container engine that builds through the Docker API (no buildx needed).

repo2docker's own engine shells out to `docker buildx`, which Debian's docker.io lacks. This
engine talks to the engine's API instead (`DOCKER_HOST`, so podman's socket works too),
runs the Dockerfile's RUN steps on the build network (`network_mode`, default
`$FANCY_ENV_BUILD_NETWORK` or `fancy-env-build`, made by scripts/build-network.sh: public
hosts yes, this machine and private ranges no), and pushes through the API when repo2docker
asks for `--push` (the push is made by the engine itself, not from a RUN step). Registered
as the `repo2docker.engines` entry point `docker-api`: `repo2docker --engine docker-api ...`.

The layer cache (`--cache-from`, see `fancy_env.builder.executors.layercache`): before the
build, each cache image the engine lacks is pulled, with the registry credentials only when
the image is in the registry they are for, within `$FANCY_ENV_CACHE_PULL_TIMEOUT` seconds; an
image that cannot be pulled is left out with a line in the log, and the build goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import docker
from repo2docker.engine import BuildError, Container, ContainerEngine, Image, ImageLoadError
from traitlets import Dict, Float, Unicode, default

from .executors.layercache import CACHE_MARKER, PULL_TIMEOUT_ENV, reference_registry
from .registry_auth import registry_host

PUSH_MARKER = "[fancy-env] pushing "
NETWORK_ENV = "FANCY_ENV_BUILD_NETWORK"
DEFAULT_BUILD_NETWORK = "fancy-env-build"
BUILTIN_NETWORK_MODES = ("host", "none", "bridge", "default")


def missing_network_message(network: str) -> str:
    """The one-line failure of a build whose network does not exist, with its fix."""
    return (
        f"the build network {network!r} does not exist: run `bash scripts/setup.sh` (or "
        f"`bash scripts/build-network.sh up`) to create it"
    )


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
        help="Docker network of RUN steps (and of `run`). Default: $FANCY_ENV_BUILD_NETWORK, "
        "else 'fancy-env-build' (scripts/build-network.sh: egress to public hosts only). "
        "'host' puts a repository's code on the host network, next to the hub, the build "
        "service and the registry: unsafe for untrusted repositories.",
        config=True,
    )
    extra_init_args = Dict(
        {}, help="Extra arguments for docker.APIClient (merged with the environment).", config=True
    )

    cache_pull_timeout = Float(
        help="Seconds one layer-cache pull may take (default $FANCY_ENV_CACHE_PULL_TIMEOUT, "
        "else 300); a slower pull is abandoned and the build goes on without that image.",
        config=True,
    )

    _client: Any = None

    @default("cache_pull_timeout")
    def _cache_pull_timeout_default(self) -> float:
        try:
            return float(os.environ.get(PULL_TIMEOUT_ENV, "300"))
        except ValueError:
            return 300.0

    @default("network_mode")
    def _network_mode_default(self) -> str:
        return os.environ.get(NETWORK_ENV) or DEFAULT_BUILD_NETWORK

    def check_network(self) -> None:
        """Raise BuildError naming the fix when the build network does not exist."""
        mode = self.network_mode
        if mode in BUILTIN_NETWORK_MODES or mode.startswith("container:"):
            return
        try:
            self.client.inspect_network(mode)
        except docker.errors.NotFound:
            raise BuildError(missing_network_message(mode)) from None

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
        nocache: bool = False,
        **kwargs: Any,
    ) -> Iterator[str]:
        """Build (`nocache`: no step from the layer cache); the tag moves on success only."""
        self.check_network()
        found: list[str] = []
        yield from self.ensure_cache_images(list(cache_from or []), found)
        cache_from = found
        stream = self.client.build(
            path=path or None, fileobj=fileobj, custom_context=custom_context,
            dockerfile=dockerfile or None, tag=tag, buildargs=buildargs or {},
            cache_from=cache_from or None, container_limits=container_limits or {},
            labels=labels or None, platform=platform, network_mode=self.network_mode,
            decode=True, rm=True, forcerm=True, nocache=nocache,
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

    def ensure_cache_images(self, images: list[str], found: list[str]) -> Iterator[str]:
        """Pull the cache images the engine lacks; append to `found` those it then has."""
        for image in images:
            if self.inspect_image(image) is not None:
                found.append(image)
                continue
            yield f"{CACHE_MARKER}pulling {image}\n"
            t0 = time.monotonic()
            try:
                self.pull(image, t0 + self.cache_pull_timeout)
            except (docker.errors.DockerException, OSError, ImageLoadError) as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                yield f"{CACHE_MARKER}could not pull {image} ({reason}): building without it\n"
                continue
            found.append(image)
            yield f"{CACHE_MARKER}pulled {image} in {time.monotonic() - t0:.1f} s\n"

    def pull_auth(self, image: str) -> dict[str, str] | None:
        """The credentials for pulling `image`: only if it is in their registry."""
        creds = self.registry_credentials or {}
        if not creds.get("username") or not creds.get("registry"):
            return None
        if registry_host(creds["registry"]) != reference_registry(image):
            return None
        return {"username": creds["username"], "password": creds.get("password", "")}

    def pull(self, image: str, deadline: float) -> None:
        """Pull `image`; ImageLoadError when the engine reports an error or at `deadline`."""
        repository, tag = docker.utils.parse_repository_tag(image)
        stream = self.client.pull(
            repository, tag=tag or "latest", stream=True, decode=True,
            auth_config=self.pull_auth(image),
        )  # fmt: skip
        try:
            for chunk in stream:
                if "error" in chunk:
                    raise ImageLoadError(str(chunk["error"]).strip())
                if time.monotonic() > deadline:
                    raise ImageLoadError(f"gave up after {self.cache_pull_timeout:g} s")
        finally:
            stream.close()
        if self.inspect_image(image) is None:
            raise ImageLoadError("the engine does not have it after the pull")

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
