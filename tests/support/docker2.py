"""The second Docker engine (scripts/docker2.sh, started by `scripts/setup.sh --test`) and
helpers for tests and benches that move images between the engines and the shared registry.

    host = docker2_host()                       # "unix:///run/fancy-env-docker2.sock" or None
    docker(host, "pull", image, config=cfg)     # the docker CLI against that engine
    cfg = docker_config(tmp_path)               # a DOCKER_CONFIG dir with the registry's auth
    registry_delete(image)                      # remove a tag's manifest from the registry
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .registry import MANIFEST_V2, image_path, registry_get, setup_state_dir, shared_auth_file

FIRST_ENGINE = ""  # docker()'s host for the first engine: the CLI's default socket


def docker2_host() -> str | None:
    """The second engine's DOCKER_HOST, when scripts/docker2.sh started it and it answers."""
    path = setup_state_dir() / "docker2.host"
    try:
        host = path.read_text().strip()
    except FileNotFoundError:
        return None
    ok = subprocess.run(["docker", "--host", host, "info"], capture_output=True, timeout=30)
    return host if ok.returncode == 0 else None


def docker(
    host: str, *args: str, config: Path | None = None, timeout: float = 300, check: bool = True
) -> str:
    """`docker [--config DIR] [--host HOST] ARGS`; its stdout (an error fails with stderr)."""
    cmd = ["docker"]
    if config is not None:
        cmd += ["--config", str(config)]
    if host:
        cmd += ["--host", host]
    out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd + list(args))}: {out.stderr.strip()}")
    return out.stdout.strip()


def docker_config(directory: Path) -> Path:
    """A DOCKER_CONFIG directory (0700) whose config.json is the shared registry's auth file."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    auth = shared_auth_file()
    if auth is not None:
        shutil.copyfile(auth, directory / "config.json")
        (directory / "config.json").chmod(0o600)
    return directory


def remove_images(host: str, images: Iterable[str]) -> None:
    """Remove images from an engine (missing ones are fine), then its dangling layers."""
    names = list(images)
    if names:
        docker(host, "image", "rm", "--force", *names, check=False)
    docker(host, "image", "prune", "--force", check=False)


def registry_delete(image: str) -> bool:
    """Delete `image`'s manifest (by its digest) from the shared registry; False if absent."""
    name, tag = image_path(image)
    head = registry_get(
        f"/v2/{name}/manifests/{tag}", method="HEAD", headers={"Accept": MANIFEST_V2}
    )  # fmt: skip
    if head.status_code != 200:
        return False
    digest = head.headers["Docker-Content-Digest"]
    r = registry_get(f"/v2/{name}/manifests/{digest}", method="DELETE")
    return r.status_code == 202
