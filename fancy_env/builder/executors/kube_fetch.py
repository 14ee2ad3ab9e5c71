"""The fetch of a build pod (pure): an init container that clones with the service's policy.

The service checks the repository URL and resolves its host before it creates the pod (as
the Docker executor does), and pins the approved address into the git command lines. The
`fetch` init container then runs, in an emptyDir mounted at `/work`:

    python3 -I -S -c PROGRAM SPEC

PROGRAM is `fancy_env.builder.confine` and `fancy_env.builder.podfetch` as they are in this
package (their source, loaded as modules: one copy of the rules, no fancy_env needed in the
image, standard library only); SPEC is JSON with the git command lines from
`confine.clone_steps` (exactly the ones the one-machine fetch runs: pinned address, no
redirects, http(s) only, no credential helper, no system or global config, hooks off, no
submodules), git's environment, and the subdirectory. It clones into `/work/src`, checks out
the commit, and refuses the tree when a link leads out of it or the subdirectory, `binder/`
or `.binder/` resolve outside it. Only then does the builder container start; it runs
repo2docker on the local directory `/work/src/<subdir>` (the Local content provider: no
clone, no `--ref`), with `/work` mounted read-only.
"""

from __future__ import annotations

import functools
import inspect
import posixpath
from typing import Any

from .. import confine, podfetch
from .base import BuildJob

FETCH_CONTAINER = "fetch"
CHECKOUT_VOLUME = "checkout"
WORK_DIR = "/work"
SRC_NAME = "src"
GIT_HOME = "/nonexistent"

_BOOT = """\
import sys, types
package = types.ModuleType("fancy_env_pod")
package.__path__ = []
sys.modules["fancy_env_pod"] = package
def load(name, source):
    module = types.ModuleType("fancy_env_pod." + name)
    module.__package__ = "fancy_env_pod"
    sys.modules[module.__name__] = module
    exec(compile(source, name + ".py", "exec"), module.__dict__)
    return module
load("confine", CONFINE)
sys.exit(load("podfetch", PODFETCH).main(sys.argv[1:]))
"""


@functools.cache
def fetch_program() -> str:
    """The `python3 -c` program of the fetch container: confine.py and podfetch.py, loaded
    as the package `fancy_env_pod`, then `podfetch.main(SPEC)`."""
    sources = {
        "CONFINE": inspect.getsource(confine),
        "PODFETCH": inspect.getsource(podfetch),
    }
    header = "".join(f"{name} = {source!r}\n" for name, source in sources.items())
    return header + _BOOT


def local_context(subdir: str) -> str:
    """The directory the builder container hands repo2docker."""
    src = posixpath.join(WORK_DIR, SRC_NAME)
    return posixpath.join(src, subdir) if subdir else src


def fetch_spec(job: BuildJob, pin: list[str], timeout: float) -> str:
    steps = confine.clone_steps(job.repo, job.commit, SRC_NAME, pin)
    return podfetch.pod_spec(steps, confine.fetch_env(GIT_HOME), SRC_NAME, job.subdir, timeout)


def fetch_container(
    job: BuildJob,
    *,
    image: str,
    pin: list[str],
    run_as: int,
    timeout: float,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `fetch` init container: clone and check as the unprivileged `run_as` uid."""
    return {
        "name": FETCH_CONTAINER,
        "image": image,
        "command": ["python3", "-I", "-S", "-c", fetch_program(), fetch_spec(job, pin, timeout)],
        "workingDir": WORK_DIR,
        "resources": resources or {},
        "securityContext": {
            "runAsUser": run_as,
            "runAsGroup": run_as,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": CHECKOUT_VOLUME, "mountPath": WORK_DIR}],
    }


def checkout_volume(size_limit: str) -> dict[str, Any]:
    empty_dir: dict[str, Any] = {"sizeLimit": size_limit} if size_limit else {}
    return {"name": CHECKOUT_VOLUME, "emptyDir": empty_dir}


BUILDER_MOUNT = {"name": CHECKOUT_VOLUME, "mountPath": WORK_DIR, "readOnly": True}
