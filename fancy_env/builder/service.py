"""The build service's core: requests, the cache, the queue, running builds, recovery.

`BuildService.request(user, repo, ref, subdir)` parses and checks the input, resolves the
ref, names the image, and answers from the cache, from an identical build in progress, or
with a new queued build (at most `max_queued_per_user` of a user's own builds wait or run at
once; beyond that, 429 with Retry-After). `rebuild=True` builds the commit again without the
layer cache (owners and admins, once per `rebuild_interval`; see `rebuild.py`): the old
image keeps its name and keeps serving until the new one replaces it. A private repository
(one only the requester's own forge credential opens, see `access.py`) gives a build marked
`private`; every later request for its image (cache hit, share of the running build, link
launch) proves access with the requesting user's own credential first, or is refused (403).
Running builds emit events into their `ActiveBuild` (the log capped by `LogCap`); what they
store goes through the build's `Journal` (ordered awaited writes); their log lines are stored
by `LineTicks`, one transaction per tick for all running builds; a flusher retries what a
flush could not store; a watchdog enforces the total and silence timeouts; at start-up,
builds left active by a previous process are adopted, re-queued or marked failed with
"interrupted by restart".
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import secrets
import socket
import time
from typing import Any

from ..errors import FancyError
from ..images import image_name, pinned_image
from ..repos import COMMIT_SHA, RepoError, RepoPolicy, RepoSpec, check_addresses, parse_repo
from . import metrics
from .access import ForgeAccess
from .db import Build, Store
from .events import TERMINAL_PHASES
from .executors.base import BuildFailed, BuildJob, Executor
from .executors.layercache import previous_image
from .journal import LineTicks, until_stored
from .queue import FairQueue
from .rebuild import RebuildAsk, check_rebuild
from .registry import CacheCheckError, RegistryAuthError, find_digest
from .serviceconfig import ServiceConfig
from .stream import ActiveBuild, LogCap, ReplayCache, StreamSlots

INTERRUPTED = "interrupted by restart"


class ServiceError(FancyError):
    """A refused build request (`reason` is the message; `str()` is the bare reason)."""

    def __init__(
        self, status: int, reason: str, field: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, reason, field, headers)
        self.args = (reason,)

    @property
    def reason(self) -> str:
        return self.message


class BuildService:
    def __init__(
        self,
        store: Store,
        executor: Executor,
        checker: Any,
        policy: RepoPolicy,
        config: ServiceConfig,
        log: logging.Logger,
    ) -> None:
        self.store = store
        self.executor = executor
        self.checker = checker
        self.policy = policy
        self.config = config
        self.log = log
        self.active: dict[str, ActiveBuild] = {}
        self.by_image: dict[str, ActiveBuild] = {}
        self.queue: FairQueue[ActiveBuild] = FairQueue(
            self._start, config.max_concurrent, config.max_per_user
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()  # set by stop(): the last writes stop retrying
        self.ticks = LineTicks(store.add_lines, config.flush_interval)
        self.log_cap = LogCap(config.max_log_bytes, config.max_log_lines)
        self.streams = StreamSlots(config.max_streams_per_user)
        self.replay_cache = ReplayCache(max(0, config.replay_cache_bytes))
        self.replay_turns = asyncio.Semaphore(max(1, config.replay_concurrency))
        self._refusals_logged: set[str] = set()
        self.access = ForgeAccess(config.ref_resolver, config.git_timeout, executor)

    # ---- request path --------------------------------------------------------------------

    async def resolve(
        self, repo: str, ref: str, subdir: str, user: str = ""
    ) -> tuple[RepoSpec, str, bool]:
        """(spec, commit, private); `user`'s own credential opens a private repository."""
        try:
            spec = parse_repo(repo, ref, subdir, self.policy)
            await self._check_host(spec)
            commit, private = await self.access.resolve(user, spec)
        except RepoError as e:
            raise ServiceError(getattr(e, "status", 400), e.reason, e.field) from None
        return spec, commit, private

    async def check_access(self, user: str, spec: RepoSpec) -> bool:
        """Ask the forge, as `user`, even for a full commit; True if private (403 if denied)."""
        try:
            return (await self.access.resolve(user, spec, check=True))[1]
        except RepoError as e:
            metrics.REFUSED.labels("private").inc()
            raise ServiceError(getattr(e, "status", 400), e.reason, e.field) from None

    def normalise_repo(self, repo: str) -> str:
        """The normalised URL of `repo` (for filters); unchanged if it does not parse."""
        try:
            return parse_repo(
                repo,
                policy=RepoPolicy(allowed_http_hosts=frozenset({"*"}), allow_private_hosts=True),
            ).url
        except RepoError:
            return repo

    async def _check_host(self, spec: RepoSpec) -> None:
        if self.policy.private_allowed(spec.host, spec.port):
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(spec.host, spec.port or 443, type=socket.SOCK_STREAM)
        except OSError:
            raise RepoError("repo", f"host {spec.host} does not resolve") from None
        check_addresses(spec, [str(info[4][0]) for info in infos], self.policy)

    async def request(
        self, user: str, repo: str, ref: str = "", subdir: str = "", *,
        rebuild: bool = False, admin: bool = False,
    ) -> Build:  # fmt: skip
        spec, commit, private = await self.resolve(repo, ref, subdir, user)
        image = image_name(self.config.image_prefix, spec.key, commit)
        unchecked = bool(COMMIT_SHA.fullmatch(spec.ref))  # a full commit: nobody was asked
        if unchecked and await self.store.private_image(image):
            private, unchecked = await self.check_access(user, spec), False
        if rebuild:
            return await self._rebuild(user, admin, spec, commit, image, private)
        shared = self.by_image.get(image)
        if shared is not None and not shared.job.no_cache:  # a rebuild: the old image serves
            return await self._share(shared, user)
        try:
            cached = await self._cached(image)
        except RegistryAuthError as e:  # never "not cached": that would rebuild and fail again
            return await self._registry_refused(user, spec, commit, image, str(e))
        if cached is not None:
            return await self._cache_hit(user, spec, commit, image, cached, private)
        if unchecked:  # a new build: is the repository private, and may this user read it?
            private = await self.check_access(user, spec)
        shared = self.by_image.get(image)  # an identical request may have won the race
        if shared is not None:
            return await self._share(shared, user)
        self._check_queue_share(user)  # no await until the build is in memory: no stale count
        return await self._new_build(user, spec, commit, image, private=private)

    async def _rebuild(
        self, user: str, admin: bool, spec: RepoSpec, commit: str, image: str, private: bool
    ) -> Build:
        """A new build of `image` without the layer cache, or the identical one under way.

        The records are read first; from the join on, no await until the build is in
        memory: the join, the queue share and the new build see the same state."""
        owner, last = (
            await self.store.requested(user, image),
            await self.store.last_rebuild(user, image),
        )
        serving = await self.store.serving_build(image)
        ask = RebuildAsk(
            user=user, admin=admin, owner=owner, last=last, now=time.time(),
            interval=self.config.rebuild_interval,
        )  # fmt: skip
        refusal = check_rebuild(ask)
        if refusal is not None:
            metrics.REFUSED.labels("rebuild").inc()
            headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
            raise ServiceError(refusal.status, refusal.reason, "rebuild", headers)
        shared = self.by_image.get(image)
        if shared is not None:  # a rebuild (or the first build) of this image is under way
            return await self._share(shared, user)
        self._check_queue_share(user)
        return await self._new_build(user, spec, commit, image, serving, private=private)

    def _check_queue_share(self, user: str) -> None:
        """Refuse a new build when `user` already has the most builds waiting or running."""
        limit = self.config.max_queued_per_user
        if limit <= 0:
            return
        mine = sum(1 for active in self.active.values() if active.user == user)
        if mine >= limit:
            retry = self.config.queue_retry_after
            metrics.REFUSED.labels("queue_share").inc()
            raise ServiceError(
                429,
                f"you already have {mine} builds queued or running, the most allowed "
                f"(max_queued_per_user = {limit}); wait for one to end or cancel one, "
                f"then try again (in about {retry} s)",
                headers={"Retry-After": str(retry)},
            )

    async def _cached(self, image: str) -> str | None:
        """The digest of `image` if it is there ("" when unknown), None if not."""
        try:
            return await find_digest(self.checker, image)
        except RegistryAuthError:
            raise
        except CacheCheckError as e:
            self.log.warning("cache check failed for %s: %s", image, e)
            return None

    async def _built_digest(self, image: str) -> str:
        """The digest of an image just built (asked afresh: a rebuild moved the tag)."""
        forget = getattr(self.checker, "forget", None)
        if callable(forget):
            forget(image)
        try:
            return await find_digest(self.checker, image) or ""
        except CacheCheckError as e:
            self.log.warning("no digest for %s (its servers launch by tag): %s", image, e)
            return ""

    def launch_image(self, build: Build) -> str:
        """What a server of `build` launches: `name@digest` (a registry), the image ID (an
        engine without one), or the tag for records without a digest."""
        try:
            return pinned_image(build.image, build.digest or "", self.config.push)
        except ValueError:
            return str(build.image)

    async def rebuild_missing(self, user: str, build: Build) -> Build:
        """A new build of `build`'s commit, whose image was found gone at a launch (or the
        identical build already under way). Raises ServiceError (policy, queue share)."""
        try:
            spec = parse_repo(build.repo, build.ref, build.subdir, self.policy)
        except RepoError as e:
            raise ServiceError(400, e.reason, e.field) from None
        image = image_name(self.config.image_prefix, spec.key, build.commit)
        shared = self.by_image.get(image)
        if shared is not None:
            return await self._share(shared, user)
        self._check_queue_share(user)
        return await self._new_build(user, spec, build.commit, image, private=build.private)

    async def _share(self, active: ActiveBuild, user: str) -> Build:
        """`user` joins the build under way (after its record is stored: the journal)."""
        await active.journal.submit(lambda: self.store.add_user(active.id, user), "a user")
        metrics.DEDUPED.inc()
        build = await self.store.get(active.id)
        assert build is not None
        return build

    async def _cache_hit(
        self,
        user: str,
        spec: RepoSpec,
        commit: str,
        image: str,
        digest: str = "",
        private: bool = False,
    ) -> Build:
        now = time.time()
        build = Build(
            id=secrets.token_hex(8), user=user, repo=spec.url, ref=spec.ref, subdir=spec.subdir,
            commit=commit, image=image, status="built", cache_hit=True, created=now,
            started=now, finished=now, digest=digest, private=private,
        )  # fmt: skip
        active = ActiveBuild(build.id, user, self._job(build))
        active.emit("built", f"Found {image} (commit {commit[:12]}): no build needed", image)
        await self.store.add_build(build, lines=active.take_unflushed())
        metrics.CACHE_HITS.inc()
        metrics.BUILDS.labels("cache_hit").inc()
        return build

    async def _registry_refused(
        self, user: str, spec: RepoSpec, commit: str, image: str, reason: str
    ) -> Build:
        """A failed build record naming the registry and the fix; the admin's log gets it once."""
        if reason not in self._refusals_logged:
            self._refusals_logged.add(reason)
            self.log.error("registry refused the cache check (shown once): %s", reason)
        now = time.time()
        build = Build(
            id=secrets.token_hex(8), user=user, repo=spec.url, ref=spec.ref, subdir=spec.subdir,
            commit=commit, image=image, status="failed", reason=reason, created=now,
            finished=now,
        )  # fmt: skip
        active = ActiveBuild(build.id, user, self._job(build))
        active.emit("failed", reason)
        await self.store.add_build(build, lines=active.take_unflushed())
        metrics.BUILDS.labels("failed").inc()
        return build

    def _job(self, build: Build) -> BuildJob:
        return BuildJob(
            build_id=build.id, repo=build.repo, ref=build.ref, commit=build.commit,
            subdir=build.subdir, image=build.image, push=self.config.push,
            no_cache=bool(build.rebuild), private=bool(build.private),
        )  # fmt: skip

    async def _new_build(
        self, user: str, spec: RepoSpec, commit: str, image: str, rebuild_of: str | None = None,
        *, private: bool = False,
    ) -> Build:  # fmt: skip
        """A queued build; `rebuild_of` (a build id, or "") makes it a rebuild of `image`.
        In memory (queued, joinable) before the first await; returned once stored."""
        build = Build(
            id=secrets.token_hex(8), user=user, repo=spec.url, ref=spec.ref, subdir=spec.subdir,
            commit=commit, image=image, status="queued", created=time.time(),
            rebuild=rebuild_of is not None, rebuild_of=rebuild_of or "", private=private,
        )  # fmt: skip
        active = self._activate(build, 0)
        active.journal.recorded = False

        async def record() -> None:
            await self.store.add_build(build)
            active.journal.recorded = True

        stored = active.journal.submit(record, "the record")
        shown_ref = spec.ref or "HEAD"
        active.emit("resolving", f"Resolved {spec.url} {shown_ref} to commit {commit}")
        if rebuild_of is not None:
            active.emit("resolving", f"Rebuilding {image} without the layer cache; the "
                        "current image keeps serving until the new one is built")  # fmt: skip
        self.queue.submit(active)
        if active.task is None:
            position = self.queue.position(active)
            active.emit("queued", f"Waiting for a build slot (position {position} in line)")
        flushed = self._flush(active)
        metrics.QUEUE_LENGTH.set(len(self.queue))
        try:
            await stored
        except Exception:
            self._stop(active, "failed", "the build could not be stored")
            raise
        await asyncio.wait([flushed])
        return build

    def _activate(self, build: Build, base_seq: int) -> ActiveBuild:
        active = ActiveBuild(build.id, build.user, self._job(build), base_seq, self.log_cap)
        active.on_phase = self._phase_changed
        active.on_emit = self._schedule_flush
        active.on_truncate = self._log_truncated
        self.active[build.id] = active
        self.by_image[build.image] = active
        return active

    def _phase_changed(self, active: ActiveBuild, phase: str) -> None:
        if phase not in TERMINAL_PHASES:
            active.journal.submit(lambda: self.store.update(active.id, status=phase), "a phase")

    def _log_truncated(self, active: ActiveBuild) -> None:
        active.journal.submit(lambda: self.store.update(active.id, log_truncated=True))
        metrics.LOGS_TRUNCATED.inc()

    # ---- running ---------------------------------------------------------------------------

    def _start(self, active: ActiveBuild) -> None:
        metrics.QUEUE_LENGTH.set(len(self.queue))
        active.started, active.started_at = time.monotonic(), time.time()
        start = functools.partial(self.store.update, active.id, started=active.started_at)
        active.journal.submit(start, "the start")
        active.task = asyncio.create_task(self._run(active))

    async def _run(self, active: ActiveBuild) -> None:
        metrics.RUNNING.inc()
        metrics.EXECUTOR_RUNS.inc()
        active.emit("fetching", f"Build started with the {self.executor.name} executor")
        try:
            active.job = await self._with_previous_image(active.job)
            await self.executor.run(await self._with_credential(active), active.log_line)
            digest = await self._built_digest(active.job.image)
        except asyncio.CancelledError:
            if active.stop_reason is not None:
                self._finish(active, *active.stop_reason)
            elif self.executor.can_adopt:
                self._flush(active)  # the service stops; the next one adopts the build
            else:
                self._finish(active, "failed", INTERRUPTED)
        except BuildFailed as e:
            self._finish(active, "failed", e.reason)
        except Exception as e:  # noqa: BLE001 - any executor error fails the build, visibly
            self.log.exception("build %s: executor error", active.id)
            self._finish(active, "failed", f"executor error: {e}")
        else:
            self._finish(active, "built", "", digest)
        finally:
            metrics.RUNNING.dec()
            self.queue.done(active)
            metrics.QUEUE_LENGTH.set(len(self.queue))

    async def _with_credential(self, active: ActiveBuild) -> BuildJob:
        """The job, with its requester's own credential when the repository is private (read
        now, so a re-queued build after a restart has it too; kept in memory only)."""
        job = active.job
        if not job.private:
            return job
        auth = await self.access.auth_for(active.user, job.repo)
        if auth is None:
            raise BuildFailed(
                f"the credential this private repository needs was removed; add it again at "
                f"{self.access.page_url} and build again"
            )
        return dataclasses.replace(job, auth=auth)

    async def _with_previous_image(self, job: BuildJob) -> BuildJob:
        """`job` with the repository's last built image, its layer cache (see layercache)."""
        if job.no_cache or job.previous_image:
            return job
        builds = await self.store.history(repo=job.repo, limit=25)
        return dataclasses.replace(job, previous_image=previous_image(builds, job))

    def _finish(self, active: ActiveBuild, phase: str, reason: str, digest: str = "") -> None:
        if active.done:
            return
        image = active.job.image if phase == "built" else None
        job = active.job
        if phase == "built":
            message = f"Built {image}"
            record = functools.partial(self.store.add_image, job.image, job.repo, job.commit,
                                       active.id)  # fmt: skip
            what = f"build {active.id}: storing its image"
            active.journal.submit(lambda: until_stored(record, self._stopping, what))
            if hasattr(self.checker, "remember"):
                self.checker.remember(active.job.image, digest)
        else:
            message = reason
        active.emit(phase, message, image)
        # the last lines and the result in one transaction; watchers see the end once both
        # are stored, and the build leaves `active` after that (then all is in the database)
        result = {"status": phase, "reason": reason, "finished": time.time(), "digest": digest}
        if active.started_at is not None:  # again: that earlier write was not retried
            result["started"] = active.started_at
        if active.truncated:
            result["log_truncated"] = True
        self._flush(active, result)
        active.journal.submit(lambda: self._retire(active))
        if self.by_image.get(active.job.image) is active:
            del self.by_image[active.job.image]
        metrics.BUILDS.labels(phase).inc()
        if active.started is not None:
            metrics.DURATION.labels(phase).observe(time.monotonic() - active.started)

    async def _retire(self, active: ActiveBuild) -> None:
        if self.active.get(active.id) is active:
            del self.active[active.id]

    async def cancel(self, active: ActiveBuild, by: str) -> None:
        """Cancel; a queued build's result is stored when this returns."""
        self._stop(active, "cancelled", f"cancelled by {by}")
        await active.journal.drain()

    def _stop(self, active: ActiveBuild, phase: str, reason: str) -> None:
        if active.done:
            return
        if self.queue.remove(active):
            self._finish(active, phase, reason)
            metrics.QUEUE_LENGTH.set(len(self.queue))
        elif active.task is not None and active.stop_reason is None:
            active.stop_reason = (phase, reason)
            active.task.cancel()

    # ---- background ------------------------------------------------------------------------

    def _schedule_flush(self, active: ActiveBuild) -> None:
        """Store (then show) new lines at the next tick, with every other build's."""
        self.ticks.schedule(active)  # a failure is logged; the lines stay; the flusher retries

    def _flush(
        self, active: ActiveBuild, result: dict[str, Any] | None = None
    ) -> asyncio.Task[Any]:
        """Store pending lines (and the build's `result` values), then publish them to
        watchers (stored before shown): one journal write, joined by later flushes until
        it starts (it takes the lines then)."""
        journal = active.journal
        if result is None and journal.pending_flush is not None:
            return journal.pending_flush
        task = journal.submit(lambda: self._store_pending(active, result), "log lines")
        journal.pending_flush = None if result is not None else task
        journal.final_queued = journal.final_queued or result is not None
        return task

    async def _store_pending(self, active: ActiveBuild, result: dict[str, Any] | None) -> None:
        journal = active.journal
        if journal.pending_flush is asyncio.current_task():
            journal.pending_flush = None  # started: later lines need a later flush
        if result is None:
            return await self._store_lines(active, None)
        try:  # the result is not given up while the service runs (the database may be away)
            await until_stored(lambda: self._store_lines(active, result), self._stopping,
                               f"build {active.id}: storing its last lines and result")  # fmt: skip
        finally:
            journal.final_queued = False

    async def _store_lines(self, active: ActiveBuild, result: dict[str, Any] | None) -> None:
        async with self.ticks.lock:  # one write of log lines at a time (seq order)
            if result is None and (active.done or active.journal.final_queued):
                return  # ended while this waited: the last flush stores them with the result
            lines = active.take_unflushed()
            try:
                await self.store.add_lines(lines, active.id, **(result or {}))
            except Exception:
                active.unflushed[:0] = lines
                raise
            active.publish(active.seq - len(active.unflushed))

    def flush_all(self) -> None:
        for active in list(self.active.values()):
            if active.unflushed:
                self._flush(active)

    async def drain(self) -> None:
        """Wait until every build's writes asked for so far are stored."""
        await asyncio.gather(*(a.journal.drain() for a in list(self.active.values())))
        await self.ticks.idle()

    async def _flusher(self) -> None:
        """Safety net: retry anything a scheduled flush could not store."""
        while True:
            await asyncio.sleep(1.0)
            for active in list(self.active.values()):
                if active.unflushed:
                    self.ticks.schedule(active)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.config.silence_timeout / 4))
            now = time.monotonic()
            for active in list(self.active.values()):
                if active.started is None or active.done:
                    continue
                if now - active.started > self.config.build_timeout:
                    limit = self.config.build_timeout
                    self._stop(active, "failed", f"build timed out after {limit:g}s")
                elif now - active.last_output > self.config.silence_timeout:
                    limit = self.config.silence_timeout
                    self._stop(active, "failed", f"no log output for {limit:g}s (silence timeout)")

    async def start(self) -> None:
        await self.recover()
        await self.drain()  # what recovery decided is stored before the first request reads it
        self._tasks = [
            asyncio.create_task(self._flusher()),
            asyncio.create_task(self._watchdog()),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        self.ticks.cancel()
        self.executor.shutting_down = True
        running = [a.task for a in self.active.values() if a.task is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self.flush_all()
        await self.drain()
        await self.executor.close()

    async def recover(self) -> None:
        """Builds a previous process left active: adopt, re-queue, or mark interrupted."""
        for build in await self.store.active():
            base = await self.store.last_seq(build.id)
            if build.status in ("queued", "resolving") and build.commit:
                active = self._activate(build, base)
                await self._restore_log_size(active, build)
                active.emit("queued", "Queued again after a restart of the service")
                self.queue.submit(active)
            elif await self.executor.is_running(self._job(build)):
                active = self._activate(build, base)
                await self._restore_log_size(active, build)
                stored = await self.store.lines(build.id, max(base - 1, 0), limit=1)
                resume = stored[-1].time if stored else 0.0
                active.job = dataclasses.replace(active.job, resume_after=resume)
                active.emit(build.status, "Adopted the running build after a restart")
                self.queue.adopt(active)
                self._start(active)
            else:
                active = self._activate(build, base)
                self._finish(active, "failed", INTERRUPTED)
            self._flush(active)

    async def _restore_log_size(self, active: ActiveBuild, build: Build) -> None:
        """An adopted or re-queued build keeps counting its log from what is stored."""
        active.log_lines, active.log_bytes = await self.store.log_size(build.id)
        active.truncated = bool(build.log_truncated)
