"""A fake executor: scripted phases and lines, for the form and for tests.

Behaviour can be chosen per repository by regexes on the repository URL, so one running
service can show a success, a failure, a slow build and a silent one.
"""

from __future__ import annotations

import asyncio
import re

from traitlets import Float, Int, Unicode

from .base import BuildFailed, BuildJob, Emit, Executor


class FakeExecutor(Executor):
    name = "fake"
    accepts_credentials = True  # it fetches nothing; the service's checks still apply

    lines_per_phase = Int(3, help="How many log lines each phase (fetching, building) writes.").tag(
        config=True
    )
    line_delay = Float(0.05, help="Seconds between two log lines.").tag(config=True)
    slow_pattern = Unicode(
        r".*slow.*", help="Repositories matching this regex write 10x more lines, slowly."
    ).tag(config=True)
    fail_pattern = Unicode(r".*fail.*", help="Repositories matching this regex fail.").tag(
        config=True
    )
    silent_pattern = Unicode(
        r".*silent.*", help="Repositories matching this regex go silent after fetching."
    ).tag(config=True)

    runs = 0

    async def run(self, job: BuildJob, emit: Emit) -> None:
        type(self).runs += 1
        slow = re.fullmatch(self.slow_pattern, job.repo) is not None
        count = self.lines_per_phase * (10 if slow else 1)
        if job.no_cache:
            emit("fetching", "rebuilding without the layer cache")
        for i in range(count):
            emit("fetching", f"fetching {job.repo} {job.commit[:8]}: line {i + 1}")
            await asyncio.sleep(self.line_delay)
        if re.fullmatch(self.silent_pattern, job.repo):
            await asyncio.sleep(3600)
        for i in range(count):
            emit("building", f"Step {i + 1}/{count} : RUN fake build line {i + 1}")
            await asyncio.sleep(self.line_delay)
        if re.fullmatch(self.fail_pattern, job.repo):
            raise BuildFailed("the fake build failed (repository matches fail_pattern)")
        if job.push:
            emit("pushing", f"pushing {job.image}")
            await asyncio.sleep(self.line_delay)
