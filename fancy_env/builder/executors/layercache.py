"""The layer cache across engines (`cache_from`): which images a build reuses layers from.

A content-only commit is fast where the engine holds the layers of the previous build. On
an engine that never built the repository (a new node, a fresh build pod) it is fast only
if the engine first fetches those layers: a build therefore names, as repo2docker's
`cache_from`, the last image built for the same repository and subdirectory (from the build
records; the service puts it in `BuildJob.previous_image`) and the admin's base images
(`layer_cache_images`). The Docker executor's engine pulls each one the engine lacks
(`r2d_engine`, with the registry's credentials only for the registry they are for, within
`layer_cache_pull_timeout`); a pull that fails leaves that image out, with a line in the
build log, never a failed build. A forced rebuild uses no cache at all.

This module is pure (no I/O): the traits both executors share and the functions that
choose the images and the command-line arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

from traitlets import Bool, Float, List, Unicode
from traitlets.config import Configurable

from .base import BuildJob

PULL_TIMEOUT_ENV = "FANCY_ENV_CACHE_PULL_TIMEOUT"  # read by r2d_engine.DockerAPIEngine
CACHE_MARKER = "[fancy-env] layer cache: "


class LayerCacheConfig(Configurable):
    """The layer-cache traits of an executor (`c.DockerExecutor.layer_cache = False`)."""

    layer_cache = Bool(
        True,
        help="Build with a layer cache from the registry: the last image built for the same "
        "repository (and subdirectory) and the images in layer_cache_images are handed to "
        "repo2docker as `--cache-from`, pulled first when the engine lacks them, so a "
        "content-only commit reuses the environment's layers on an engine (node, build pod) "
        "that never built the repository. A pull that fails only leaves that image out (the "
        "build log says so). Turn it off to build every commit from the engine's own cache "
        "only. A forced rebuild never uses a cache, whatever this says.",
    ).tag(config=True)
    layer_cache_images = List(
        Unicode(),
        help="Images every build also uses as layer cache, pulled when the engine lacks them "
        "(with the registry's credentials when they are in the build service's registry): "
        "the base image your repositories build FROM (the profile's single-user image, or "
        "repo2docker's base image). On a fresh engine, a Dockerfile's `FROM` image in an "
        "authenticated registry is found only if it is listed here. Names as `docker pull` "
        "takes them (`registry/name:tag` or `name@sha256:...`).",
    ).tag(config=True)
    layer_cache_pull_timeout = Float(
        300,
        help="Seconds the engine may spend pulling one layer-cache image (the Docker "
        "executor; a silent registry is given up after the Docker client's own read "
        "timeout, 60 s). A pull that takes longer is abandoned and the build goes on "
        "without that image.",
    ).tag(config=True)


def cache_sources(job: BuildJob, enabled: bool, images: Sequence[str]) -> list[str]:
    """The images `job` uses as layer cache: none for a rebuild or with the cache off; else
    the repository's previous image, then the base images, without repeats or `job.image`."""
    if not enabled or job.no_cache:
        return []
    chosen: list[str] = []
    for image in (job.previous_image, *images):
        image = image.strip()
        if image and image != job.image and image not in chosen:
            chosen.append(image)
    return chosen


def cache_from_args(sources: Sequence[str]) -> list[str]:
    """repo2docker's own `--cache-from` option, once per image."""
    args: list[str] = []
    for image in sources:
        args += ["--cache-from", image]
    return args


def reference_registry(image: str) -> str:
    """The registry host of an image reference, as Docker reads it (`docker.io` when the
    first component is not a host: no dot, no port, not `localhost`)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def previous_image(builds: Sequence[object], job: BuildJob) -> str:
    """The newest built image of `job`'s repository and subdirectory other than its own, from
    build records (newest first; anything with repo, subdir, status and image attributes)."""
    for build in builds:
        if (
            getattr(build, "status", "") == "built"
            and getattr(build, "repo", None) == job.repo
            and (getattr(build, "subdir", "") or "") == job.subdir
            and getattr(build, "image", "")
            and getattr(build, "image", "") != job.image
        ):
            return str(getattr(build, "image", ""))
    return ""
