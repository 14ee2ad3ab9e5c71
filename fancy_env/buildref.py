"""The build-reference hook: how a spawner learns that an image came from our build service.

A start that carries `user_options["build_id"]` is accepted only when the build service
confirms that build: it exists, finished successfully, and was built for a repository and
commit whose image name it reports. The spawner then uses the confirmed image, never one
supplied by the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ConfirmedBuild:
    """What the build service vouches for."""

    build_id: str
    repo: str
    ref: str
    commit: str
    image: str
    user: str


class BuildRefError(Exception):
    """A build reference the service does not confirm; `reason` is shown to the user."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class BuildConfirmer(Protocol):
    async def confirm(self, build_id: str, username: str) -> ConfirmedBuild:
        """Return the confirmed build or raise BuildRefError."""
        ...
