"""Who may read a repository: anonymously, or with the requesting user's own credential.

`ForgeAccess.resolve(user, spec)` resolves the ref anonymously first; when the forge answers
401/403/404 it tries again with *that user's* stored credential for the repository's exact
origin, and says the repository is private. Never anyone else's credential: a cache hit, a
share of a running build or a link launch of a private image for another user goes through
here with that user's own (`check=True` asks the forge even for a full commit, whose lookup is
otherwise skipped). Refusals are `AccessRefused` (a RepoError with an HTTP status) that say
what to do: add a credential at the page, replace a refused one, or ask the admin.
"""

from __future__ import annotations

from typing import Any

from ..repos import RepoError, RepoSpec
from .forge_auth import GitAuth, executor_refusal, host_label, needs_credential_message, origin_of
from .git import RepoAccessError, http_ls_remote, ls_remote


class AccessRefused(RepoError):
    """A refusal with its HTTP status (403: no access; 400: this service cannot build it)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__("repo", reason)
        self.status = status


class ForgeAccess:
    def __init__(self, resolver: str, timeout: float, executor: Any) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.executor = executor
        self.credentials: Any = None  # a credentials.CredentialStore, set by the app
        self.page_url = "credentials"  # the service's credentials page, set by the app

    def __repr__(self) -> str:
        return "ForgeAccess()"

    async def auth_for(self, user: str, url: str) -> GitAuth | None:
        """`user`'s own credential for the exact origin of `url`, or None."""
        if self.credentials is None:
            return None
        auth = await self.credentials.get(user, origin_of(url))
        return auth if isinstance(auth, GitAuth) else None

    async def _lookup(self, spec: RepoSpec, auth: GitAuth | None, check: bool) -> str:
        resolve = http_ls_remote if self.resolver == "http" else ls_remote
        return await resolve(spec.url, spec.ref, self.timeout, auth, check)

    async def resolve(self, user: str, spec: RepoSpec, check: bool = False) -> tuple[str, bool]:
        """(commit, private): private when only `user`'s credential opened the repository."""
        try:
            return await self._lookup(spec, None, check), False
        except RepoAccessError as e:
            anonymous = e
        origin = origin_of(spec.url)
        auth = await self.auth_for(user, spec.url)
        if auth is None:
            if self.credentials is None:
                raise anonymous
            if anonymous.code == 404:
                raise AccessRefused(
                    400,
                    f"{anonymous.reason}; if it is a private repository, "
                    + needs_credential_message(origin, self.page_url),
                )
            raise AccessRefused(403, needs_credential_message(origin, self.page_url))
        if not getattr(self.executor, "accepts_credentials", False):
            raise AccessRefused(400, executor_refusal(str(getattr(self.executor, "name", "?"))))
        try:
            commit = await self._lookup(spec, auth, check)
        except RepoAccessError as e:
            raise AccessRefused(
                403,
                f"your credential for {host_label(origin)} does not open this repository "
                f"(HTTP {e.code}): check its scopes or replace it at {self.page_url}",
            ) from None
        except RepoError as e:
            raise RepoError(e.field, auth.scrub(e.reason)) from None
        return commit, True
