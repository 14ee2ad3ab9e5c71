"""The Docker executor: real repo2docker against the local engine (Docker or podman).

Each build runs `python -m fancy_env.builder.r2d_run --engine docker-api --json-logs --no-run`
as an asyncio subprocess that dies with the service (PR_SET_PDEATHSIG), so a killed service
never leaves a build behind; the engine aborts a build whose client went away. Cancel and
timeouts terminate the process group. Registry credentials reach only that process's
environment (`CONTAINER_ENGINE_REGISTRY_CREDENTIALS`, read by repo2docker's engine for the
push): the engine gets them per push request, never a build argument or a build container.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import sys

from traitlets import Float, Int, List, Unicode

from ..git import git_env
from .base import BuildFailed, BuildJob, Emit, Executor, parse_r2d_line

PR_SET_PDEATHSIG = 1
CREDENTIALS_ENV = "CONTAINER_ENGINE_REGISTRY_CREDENTIALS"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class DockerExecutor(Executor):
    name = "docker"

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
    stop_grace = Float(5, help="Seconds between SIGTERM and SIGKILL when stopping a build.").tag(
        config=True
    )

    def _default_command(self) -> list[str]:
        return [sys.executable, "-m", "fancy_env.builder.r2d_run"]

    def command(self, job: BuildJob) -> list[str]:
        cmd = list(self.repo2docker_command or self._default_command())
        cmd += [
            "--engine", self.engine, "--no-run", "--json-logs",
            "--user-id", str(self.user_id), "--user-name", self.user_name,
            "--image-name", job.image, "--ref", job.commit,
        ]  # fmt: skip
        if job.push:
            cmd.append("--push")
        if job.subdir:
            cmd += ["--subdir", job.subdir]
        return [*cmd, *self.extra_args, job.repo]

    async def run(self, job: BuildJob, emit: Emit) -> None:
        env = git_env()
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.pop(CREDENTIALS_ENV, None)
        if job.push and self.registry_credentials:  # repo2docker's engine reads them; only its
            env[CREDENTIALS_ENV] = json.dumps(self.registry_credentials)  # push uses them
        proc = await asyncio.create_subprocess_exec(
            *self.command(job),
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
