"""The Docker executor: real repo2docker against the local engine (Docker or podman).

The service fetches, repo2docker only builds: each build first fetches the repository into
a per-build directory under `fetch_dir` (see `fancy_env.builder.checkout`: policy-checked
and address-pinned clone, no redirects, confined links, submodules only if allowed, as
`fetch_user`), then runs repo2docker on that local directory, and removes the directory
whatever the end (built, failed, cancelled, timed out, service stopped).

repo2docker runs as `python -m fancy_env.builder.r2d_run --engine docker-api --json-logs
--no-run LOCAL_DIR`, an asyncio subprocess that dies with the service (PR_SET_PDEATHSIG),
so a killed service never leaves a build behind; the engine aborts a build whose client
went away. Cancel and timeouts terminate the process group.
Registry credentials reach only repo2docker's process environment
(`CONTAINER_ENGINE_REGISTRY_CREDENTIALS`, read by repo2docker's engine for the push and for
the layer-cache pulls from that registry): the engine gets them per push or pull request,
never a build argument or a build container. The layer cache (`layer_cache`, see
`fancy_env.builder.executors.layercache`) adds `--cache-from` for the repository's previous
image and the base images; a rebuild adds none.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import os
import pwd
import signal
import sys
import tempfile

from traitlets import Bool, Float, Int, List, Unicode, default

from ...repos import RepoPolicy
from ..checkout import BuildDirs, FetchSettings, fetch_checkout, reachable_by
from ..confine import CheckoutError
from ..forge_auth import GitAuth
from ..git import GitUser, git_env
from .base import BuildFailed, BuildJob, Emit, Executor, parse_r2d_line
from .layercache import PULL_TIMEOUT_ENV, LayerCacheConfig, cache_from_args, cache_sources

PR_SET_PDEATHSIG = 1
CREDENTIALS_ENV = "CONTAINER_ENGINE_REGISTRY_CREDENTIALS"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class DockerExecutor(LayerCacheConfig, Executor):
    name = "docker"
    accepts_credentials = True

    repo2docker_command = List(
        Unicode(),
        help="Command that runs repo2docker (its arguments are appended).",
    ).tag(config=True)
    engine = Unicode(
        "docker-api",
        help="repo2docker container engine: 'docker-api' builds through the Docker API (no "
        "buildx needed, works with podman's socket); 'docker' is repo2docker's buildx engine.",
    ).tag(config=True)
    user_id = Int(1000, help="--user-id passed to repo2docker (the image's notebook user).").tag(
        config=True
    )
    user_name = Unicode("jovyan", help="--user-name passed to repo2docker.").tag(config=True)
    extra_args = List(Unicode(), help="Extra repo2docker arguments.").tag(config=True)
    build_network = Unicode(
        "fancy-env-build",
        help="Docker network the RUN steps of a build run in (handed to the docker-api engine "
        "as $FANCY_ENV_BUILD_NETWORK). The default is made by scripts/build-network.sh (run by "
        "scripts/setup.sh): public hosts and package indexes are reachable, this machine's "
        "listeners (hub, build service, proxy API, registry), link-local and private ranges "
        "are not. 'host' puts every repository's code on the host network: only for "
        "repositories you trust. A missing network fails the build with the fix to run.",
    ).tag(config=True)
    stop_grace = Float(5, help="Seconds between SIGTERM and SIGKILL when stopping a build.").tag(
        config=True
    )

    fetch_dir = Unicode(
        help="Directory holding the per-build checkouts. Default: `fetch` in the service's "
        "working directory (its state dir) when that is traversable by fetch_user, else (a "
        "0700 state dir, as `fancy-env up` makes) `fancy-env-fetch-<hash of the working "
        "directory>` in the system's temporary directory, one per service instance, so the "
        "unprivileged fetch still works. Only the service writes there; each build's "
        "directory is removed when the build ends, and left-overs of a killed service at the "
        "next build. With a fetch_user, every directory above it must be traversable (x) by "
        "that user, else the fetch runs as the service's user and a warning is logged.",
    ).tag(config=True)
    fetch_user = Unicode(
        help="Unprivileged user that runs the git fetch when the service runs as root "
        "(default 'nobody' as root, '' otherwise = the service's user). The checkout is "
        "handed back to the service's user before repo2docker reads it.",
    ).tag(config=True)
    allow_submodules = Bool(
        False,
        help="Fetch Git submodules. Off by default: a repository with submodules builds "
        "without them and the log says so. When on, every submodule URL is checked with the "
        "same policy as a typed repository URL (relative URLs resolved against the parent) "
        "and fetched with the same address pinning and no redirects; nested submodules are "
        "not fetched.",
    ).tag(config=True)
    fetch_timeout = Float(
        600, help="Seconds one git command of the fetch (clone, checkout) may take."
    ).tag(config=True)

    repo_policy: RepoPolicy = RepoPolicy()  # set by the app (the service's host policy)
    _dirs: BuildDirs | None = None

    @default("fetch_dir")
    def _fetch_dir_default(self) -> str:
        here = os.path.abspath("fetch")
        try:
            entry = pwd.getpwnam(self.fetch_user) if self.fetch_user else None
        except KeyError:
            return here  # the build fails with the reason (see _git_user)
        if entry is None or reachable_by(os.path.dirname(here), entry.pw_uid, entry.pw_gid):
            return here
        tag = hashlib.sha256(os.path.abspath(".").encode()).hexdigest()[:12]
        return os.path.join(tempfile.gettempdir(), f"fancy-env-fetch-{tag}")

    @default("fetch_user")
    def _fetch_user_default(self) -> str:
        return "nobody" if os.geteuid() == 0 else ""

    def _git_user(self) -> GitUser:
        if not self.fetch_user:
            return GitUser()
        try:
            entry = pwd.getpwnam(self.fetch_user)
        except KeyError:
            raise BuildFailed(
                f"DockerExecutor.fetch_user {self.fetch_user!r} does not exist on this machine"
            ) from None
        if entry.pw_uid == os.geteuid():
            return GitUser()
        if not reachable_by(self.fetch_dir, entry.pw_uid, entry.pw_gid):
            self.log.warning(
                "fetch_user %s cannot reach fetch_dir %s (a directory above it is not "
                "traversable): fetching as the service's user instead",
                self.fetch_user, self.fetch_dir,
            )  # fmt: skip
            return GitUser()
        return GitUser(entry.pw_uid, entry.pw_gid)

    def build_dirs(self) -> BuildDirs:
        if self._dirs is None:
            self._dirs = BuildDirs(self.fetch_dir, owner_can_enter=bool(self.fetch_user))
        return self._dirs

    def fetch_settings(self, build_dir: str) -> FetchSettings:
        user = self._git_user()
        if user.uid is not None:
            user.home = build_dir
        return FetchSettings(
            policy=self.repo_policy, allow_submodules=self.allow_submodules, user=user,
            timeout=self.fetch_timeout,
        )  # fmt: skip

    def _default_command(self) -> list[str]:
        return [sys.executable, "-m", "fancy_env.builder.r2d_run"]

    def command(self, job: BuildJob, context: str | None = None) -> list[str]:
        """repo2docker's command line; `context` = the fetched local directory to build."""
        cmd = list(self.repo2docker_command or self._default_command())
        cmd += [
            "--engine", self.engine, "--no-run", "--json-logs",
            "--user-id", str(self.user_id), "--user-name", self.user_name,
            "--image-name", job.image, "--ref", job.commit,
        ]  # fmt: skip
        if job.push:
            cmd.append("--push")
        if job.no_cache:  # understood by r2d_run (repo2docker itself has no such option)
            cmd.append("--no-cache")
        cmd += cache_from_args(self.cache_sources(job))
        if job.subdir and context is None:
            cmd += ["--subdir", job.subdir]
        return [*cmd, *self.extra_args, context or job.repo]

    def cache_sources(self, job: BuildJob) -> list[str]:
        """The images `job` takes its layer cache from (see layercache)."""
        return cache_sources(job, self.layer_cache, self.layer_cache_images)

    async def run(self, job: BuildJob, emit: Emit) -> None:
        dirs = self.build_dirs()
        try:
            build_dir = dirs.make(job.build_id)
        except CheckoutError as e:
            raise BuildFailed(e.reason) from None
        try:
            settings = self.fetch_settings(build_dir)
            settings.auth = job.auth if isinstance(job.auth, GitAuth) else None
            try:
                context = await fetch_checkout(
                    job.repo, job.commit, job.subdir, build_dir, settings,
                    lambda message: emit("fetching", message),
                )  # fmt: skip
            except CheckoutError as e:
                raise BuildFailed(e.reason) from None
            await self._repo2docker(job, context, emit)
        finally:
            dirs.remove(build_dir)

    async def _repo2docker(self, job: BuildJob, context: str, emit: Emit) -> None:
        env = git_env()
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["FANCY_ENV_BUILD_NETWORK"] = self.build_network  # read by r2d_engine
        env[PULL_TIMEOUT_ENV] = str(self.layer_cache_pull_timeout)  # read by r2d_engine
        env.pop(CREDENTIALS_ENV, None)
        # repo2docker's engine reads them; only its push and its layer-cache pulls (for
        # images in that registry) use them
        if (job.push or self.cache_sources(job)) and self.registry_credentials:
            env[CREDENTIALS_ENV] = json.dumps(self.registry_credentials)
        proc = await asyncio.create_subprocess_exec(
            *self.command(job, context),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            limit=1 << 20,
            preexec_fn=_die_with_parent,
        )
        try:
            failure = await self._follow(proc, emit)
            code = await proc.wait()
        except BaseException:
            await self._terminate(proc)
            raise
        if code != 0:
            raise BuildFailed(failure or f"repo2docker exited with code {code}")

    async def _follow(self, proc: asyncio.subprocess.Process, emit: Emit) -> str:
        assert proc.stdout is not None
        phase, failure = "fetching", ""
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                return failure
            phase, message, failed = parse_r2d_line(raw.decode("utf-8", "replace"), phase)
            if failed:
                failure = message.strip().splitlines()[0] if message.strip() else failure
            if message.strip():
                emit(phase, message)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(proc.wait(), self.stop_grace)
        except TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
