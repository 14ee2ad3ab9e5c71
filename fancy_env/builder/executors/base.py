"""The executor interface: the few extension points every executor implements.

An executor runs one build: `run(job, emit)` returns when the image is built (and pushed
when `job.push`), raises `BuildFailed(reason)` when it is not, and cleans up when its task
is cancelled (cancel, timeout). `emit(phase, message)` reports log lines as they come.
After a restart of the service, `is_running(job)` says whether the build still runs
somewhere (a build pod) so that `run` can attach to it instead of starting again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from traitlets.config import LoggingConfigurable

Emit = Callable[[str, str], None]


class BuildFailed(Exception):
    """A build that did not produce its image; `reason` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BuildJob:
    build_id: str
    repo: str
    ref: str
    commit: str
    subdir: str
    image: str
    push: bool
    resume_after: float = 0.0  # adopted after a restart: the time of the last stored line
    no_cache: bool = False  # a rebuild: no layer cache (the name moves only on success)
    private: bool = False  # from a repository that needed the requester's credential
    # that credential (GitAuth), attached in memory just before the run; never shown
    auth: object = field(default=None, repr=False, compare=False)
    previous_image: str = ""  # the repository's last built image: its layer cache (layercache)


class Executor(LoggingConfigurable):
    """Base class: subclasses implement `run` and, if they can, `is_running`."""

    name = "base"
    can_adopt = False  # True if builds outlive the service and `run` can attach to them
    shutting_down = False  # set when the service stops: don't tear down adoptable builds
    # True if `run` fetches with `job.auth` (a user's forge credential); the service refuses
    # private repositories with a 4xx on executors that don't (see howto-private-repos.md)
    accepts_credentials = False
    # repo2docker's registry_credentials for the push ({registry, username, password}), set by
    # BuilderApp from registry_credentials_file; an executor hands them to its push only
    registry_credentials: dict[str, str] = {}  # noqa: RUF012 - replaced, never mutated

    async def run(self, job: BuildJob, emit: Emit) -> None:
        raise NotImplementedError

    async def is_running(self, job: BuildJob) -> bool:
        """True if this build still runs (after a service restart) and `run` attaches to it."""
        return False

    async def close(self) -> None:
        """Release clients at shutdown."""


R2D_PHASES = {"fetching": "fetching", "building": "building", "pushing": "pushing"}
PUSH_MARKER = "[fancy-env] pushing "


def parse_r2d_line(line: str, phase: str) -> tuple[str, str, bool]:
    """One `repo2docker --json-logs` line -> (phase, message, failed)."""
    text = line.rstrip("\n")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return phase, text, False
    message = str(data.get("message", "")).rstrip("\n")
    r2d_phase = str(data.get("phase", ""))
    if message.startswith(PUSH_MARKER):
        return "pushing", message, False
    if r2d_phase == "failed":
        return phase, message, True
    if phase == "pushing" and r2d_phase == "building":
        return phase, message, False
    return R2D_PHASES.get(r2d_phase, phase), message, False
