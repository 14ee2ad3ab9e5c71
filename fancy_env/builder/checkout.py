"""Fetching an untrusted repository into a confined checkout, for repo2docker to build.

The service fetches; repo2docker only builds a local directory. `fetch_checkout`:

1. checks the URL with the service's `RepoPolicy` (parse_repo, then the resolved addresses
   with check_addresses) and pins the approved address for git's connection
   (`http.curloptResolve`), so DNS cannot answer differently for the clone;
2. clones with no redirects, http(s) only, no credential helpers and no system or global
   config, as the unprivileged `FetchSettings.user` when there is one, into a per-build
   directory under the service's fetch directory; checks out the resolved commit;
3. refuses the checkout when any symbolic link in it leads outside it, or when the
   subdirectory or repo2docker's `binder/`, `.binder/` resolve outside it;
4. fetches submodules only when the admin allows them, each URL checked like a typed one;
   a user's credential (`FetchSettings.auth`, private repositories) reaches git only as
   `http.<origin>/.extraHeader` in git's environment (GIT_CONFIG_COUNT/KEY/VALUE), for that
   exact origin: never the URL, a command line, the clone's config or the build context;
5. hands the checkout back to the service's user (`lchown`, links never followed) so the
   fetch user cannot change it between the checks and the build.

`BuildDirs` makes and removes the per-build directories (`shutil.rmtree` never follows links)
and sweeps directories a killed service left behind.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..repos import RepoError, RepoPolicy, check_addresses, parse_repo
from .confine import (
    CheckoutError,
    GitStep,
    Submodule,
    check_submodule_path,
    clone_steps,
    fetch_argv,
    git_failure,
    is_inside,
    parse_gitmodules,
    resolve_submodule_url,
)
from .forge_auth import GitAuth, git_env_for
from .git import GitUser, resolve_pin, run_git
from .podfetch import confined_context, escaping_links

__all__ = ["confined_context", "escaping_links", "fetch_checkout"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
Note = Callable[[str], None]
DIR_PREFIX = "build-"


async def resolve_host(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


@dataclass
class FetchSettings:
    policy: RepoPolicy = field(default_factory=RepoPolicy)
    allow_submodules: bool = False
    user: GitUser = field(default_factory=GitUser)
    timeout: float = 600
    resolver: Resolver = resolve_host
    auth: GitAuth | None = field(default=None, repr=False)  # the requesting user's credential


async def approve(url: str, policy: RepoPolicy, resolver: Resolver) -> list[str]:
    """Check `url` like a typed repository; the git options pinning the approved address."""
    try:
        spec = parse_repo(url, policy=policy)
    except RepoError as e:
        raise CheckoutError(f"{url}: {e.reason}") from None
    scheme = urlsplit(spec.url).scheme
    addresses = await resolver(spec.host, spec.port or (443 if scheme == "https" else 80))
    try:
        check_addresses(spec, addresses, policy)
    except RepoError as e:
        raise CheckoutError(f"{url}: {e.reason}") from None
    return resolve_pin(spec.host, spec.port, scheme, addresses[0])


async def _git(argv: list[str], cwd: str, settings: FetchSettings, what: str, url: str = "") -> str:
    """Run one git step; `url` = the remote it talks to (its credential, if any, applies)."""
    env = git_env_for(settings.auth, url) if url else {}
    try:
        code, out = await run_git(argv, cwd, settings.timeout, settings.user, env)
    except TimeoutError:
        raise CheckoutError(f"{what} did not finish within {settings.timeout:g}s") from None
    if code != 0:
        reason = git_failure(what, code, out)
        raise CheckoutError(settings.auth.scrub(reason) if settings.auth else reason)
    return out


async def clone_at(url: str, commit: str, dest: str, settings: FetchSettings) -> None:
    """Clone `url` (approved by the policy, address pinned) into `dest`, check out `commit`."""
    pin = await approve(url, settings.policy, settings.resolver)
    parent, name = os.path.split(dest)
    step: GitStep
    for step in clone_steps(url, commit, name, pin):
        await _git(list(step.argv), os.path.join(parent, step.cwd), settings, step.what, url)


def _exists(path: str) -> bool:
    return os.path.lexists(path)


def _submodule_dest(src: str, path: str) -> str:
    dest = os.path.join(src, path)
    if not is_inside(os.path.realpath(src), os.path.realpath(dest)) or os.path.islink(dest):
        raise CheckoutError(f"submodule path {path!r} leads outside the repository")
    return dest


async def _gitlinks(src: str, settings: FetchSettings) -> dict[str, str]:
    out = await _git(fetch_argv(["ls-files", "-s", "-z"]), src, settings, "listing submodules")
    links = {}
    for entry in out.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[0] == "160000":
            links[path] = parts[1]
    return links


async def fetch_submodules(src: str, repo_url: str, settings: FetchSettings, note: Note) -> None:
    """Fetch the submodules of the checkout at `src`, if allowed; note what happens."""
    if not _exists(os.path.join(src, ".gitmodules")):
        return
    listing = await _git(
        fetch_argv(["config", "--file", ".gitmodules", "--null", "--list"]), src, settings,
        "reading .gitmodules",
    )  # fmt: skip
    modules = parse_gitmodules(listing)
    if not settings.allow_submodules:
        note(
            f"The repository has {len(modules)} submodule(s); they are not fetched "
            "(submodules are off on this service: DockerExecutor.allow_submodules)"
        )
        return
    gitlinks = await _gitlinks(src, settings)
    for module in modules:
        await _fetch_submodule(src, repo_url, module, gitlinks, settings, note)


async def _fetch_submodule(
    src: str,
    repo_url: str,
    module: Submodule,
    gitlinks: dict[str, str],
    settings: FetchSettings,
    note: Note,
) -> None:
    path = module.path.strip("/")
    refusal = check_submodule_path(path)
    if refusal:
        raise CheckoutError(refusal)
    commit = gitlinks.get(path)
    if commit is None:
        note(f"Submodule {module.name!r}: no commit recorded at {path!r}; skipped")
        return
    url = resolve_submodule_url(repo_url, module.url)
    dest = _submodule_dest(src, path)
    note(f"Fetching submodule {path} from {url} at {commit[:12]}")
    try:
        await clone_at(url, commit, dest, settings)
    except CheckoutError as e:
        raise CheckoutError(f"submodule {path!r}: {e.reason}") from None


def reachable_by(path: str, uid: int, gid: int) -> bool:
    """True if the user can traverse every directory down to `path` (mode bits only)."""
    current = os.path.abspath(path)
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return False
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else 0
        if not st.st_mode & (bit or stat.S_IXOTH):
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def give_back(root: str, uid: int, gid: int) -> None:
    """lchown the whole tree to uid:gid (never following a link)."""
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


async def fetch_checkout(
    url: str, commit: str, subdir: str, build_dir: str, settings: FetchSettings, note: Note
) -> str:
    """Fetch `url` at `commit` into `build_dir/src`; return the confined build context."""
    src = os.path.join(build_dir, "src")
    os.mkdir(src, 0o700)
    if settings.user.uid is not None:
        os.chown(src, settings.user.uid, settings.user.gid or -1)
    note(f"Fetching {url} at {commit[:12]}")
    await clone_at(url, commit, src, settings)
    confined_context(src, "")  # no link may leave before anything reads the tree
    await fetch_submodules(src, url, settings, note)
    if settings.user.uid is not None:
        give_back(src, os.geteuid(), os.getegid())
    return confined_context(src, subdir)


class BuildDirs:
    """Per-build directories under the fetch directory: made, removed, swept."""

    def __init__(self, root: str, owner_can_enter: bool) -> None:
        self.root = os.path.abspath(root)
        self.mode = 0o711 if owner_can_enter else 0o700
        self.active: set[str] = set()
        self._swept = False

    def make(self, build_id: str) -> str:
        os.makedirs(self.root, mode=self.mode, exist_ok=True)
        st = os.lstat(self.root)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            # e.g. planted in a shared temporary directory by another local user
            raise CheckoutError(
                f"the fetch directory {self.root} is not a directory of the service's own: "
                "set DockerExecutor.fetch_dir"
            )
        os.chmod(self.root, self.mode)
        if not self._swept:
            self._swept = True
            self.sweep()
        name = f"{DIR_PREFIX}{build_id}-{secrets.token_hex(8)}"
        path = os.path.join(self.root, name)
        os.mkdir(path, self.mode)
        self.active.add(name)
        return path

    def remove(self, path: str) -> None:
        self.active.discard(os.path.basename(path))
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)

    def sweep(self) -> list[str]:
        """Remove build directories no running build owns (left by a killed service)."""
        removed = []
        for entry in os.scandir(self.root):
            if not entry.name.startswith(DIR_PREFIX) or entry.name in self.active:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.name)
        return removed
