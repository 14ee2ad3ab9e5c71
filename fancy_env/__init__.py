"""fancy_env: user-defined environments for JupyterHub.

Public names are imported lazily so that importing one part (say the build service) never
pulls in the others (KubeSpawner, DockerSpawner).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .hubconfig import setup
    from .spawner_docker import FancyDockerSpawner
    from .spawner_kube import FancyKubeSpawner

__all__ = ["FancyDockerSpawner", "FancyKubeSpawner", "__version__", "setup"]

_LAZY = {
    "FancyKubeSpawner": ".spawner_kube",
    "FancyDockerSpawner": ".spawner_docker",
    "setup": ".hubconfig",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'fancy_env' has no attribute {name!r}")
