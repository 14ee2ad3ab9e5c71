"""What the sharing layer may ask of the builds layer (and nothing more): request a build for
a user, read one, list a user's history, normalise a repository, and the private-repository
facts a link page shows. `Builds` is the typed interface; `ServiceBuilds` serves it from the
running `BuildService` (the assembly, `fancy_env.service`, hands it to sharing).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..repos import RepoPolicy, RepoSpec, parse_repo
from .db import Build
from .service import BuildService


class Builds(Protocol):
    prefix: str  # the service prefix the build records' URLs are under

    async def request(self, user: str, repo: str, ref: str, subdir: str) -> Build:
        """Request (or find) a build as `user`; raises ServiceError (a FancyError)."""

    async def get(self, build_id: str) -> Build | None: ...

    async def requested_by(self, build_id: str, user: str) -> Build | None:
        """The build, if `user` asked for it (its owner, or a later requester); else None."""

    async def history(self, user: str, limit: int = 100) -> list[Build]: ...

    def normalise(self, repo: str, ref: str = "", subdir: str = "") -> RepoSpec:
        """The repository as the build service names it; RepoError when it never builds it."""

    @property
    def policy(self) -> RepoPolicy: ...

    @property
    def credentials(self) -> Any:
        """The users' forge-token store (builder.credentials.CredentialStore), or None."""

    async def is_private(self, repo: str) -> bool:
        """Whether a build of `repo` needed a credential (a private repository)."""


class ServiceBuilds:
    """`Builds` from the build service running in this process."""

    def __init__(self, service: BuildService, prefix: str) -> None:
        self._service = service
        self.prefix = prefix

    async def request(self, user: str, repo: str, ref: str, subdir: str) -> Build:
        return await self._service.request(user, repo, ref, subdir)

    async def get(self, build_id: str) -> Build | None:
        return await self._service.store.get(build_id)

    async def requested_by(self, build_id: str, user: str) -> Build | None:
        build = await self._service.store.get(build_id)
        if build is None:
            return None
        if build.user == user or user in await self._service.store.users(build.id):
            return build
        return None

    async def history(self, user: str, limit: int = 100) -> list[Build]:
        return list(await self._service.store.history(user=user, limit=limit))

    def normalise(self, repo: str, ref: str = "", subdir: str = "") -> RepoSpec:
        return parse_repo(repo, ref, subdir, self._service.policy)

    @property
    def policy(self) -> RepoPolicy:
        return self._service.policy

    @property
    def credentials(self) -> Any:
        return self._service.access.credentials

    async def is_private(self, repo: str) -> bool:
        return bool(await self._service.store.private_repo(repo))
