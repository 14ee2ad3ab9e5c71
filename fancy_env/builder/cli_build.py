"""`fancy-env build REPO [--ref REF] [--subdir DIR] [--hub URL --token T]`.

With `--hub` it asks the hub's build service (JupyterHub API token from `--token` or
$JUPYTERHUB_API_TOKEN) and follows the event stream, reconnecting with `Last-Event-ID`.
Without it, it builds locally: the same ref resolution, image name and cache check, and the
Docker executor with real repo2docker. Progress goes to stderr (a bar on a terminal, one line
per phase otherwise); the image name is the last line on stdout. Exit status: 0 built,
1 failed or cancelled, 2 refused input or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from typing import Any, TextIO

from ..images import image_name
from ..repos import RepoError, RepoPolicy, parse_repo
from .events import PHASES, TERMINAL_PHASES
from .sse import SseParser, build_event

BAR_PHASES = list(PHASES[: PHASES.index("built") + 1])  # the phases of a build that succeeds


class Progress:
    """A one-line progress bar through the phases (plain lines when not on a terminal)."""

    def __init__(self, out: TextIO = sys.stderr, verbose: bool = False) -> None:
        self.out = out
        self.tty = out.isatty()
        self.verbose = verbose
        self.phase = ""

    def update(self, phase: str, message: str) -> None:
        message = message.strip().splitlines()[-1] if message.strip() else ""
        if self.verbose:
            self.out.write(f"[{phase}] {message}\n")
        elif self.tty:
            self._bar(phase, message)
        elif phase != self.phase:
            self.out.write(f"{phase}: {message}\n")
        self.phase = phase
        self.out.flush()

    def _bar(self, phase: str, message: str) -> None:
        width = shutil.get_terminal_size((80, 20)).columns
        step = BAR_PHASES.index(phase) + 1 if phase in BAR_PHASES else len(BAR_PHASES)
        bar = "#" * (step * 3) + "." * ((len(BAR_PHASES) - step) * 3)
        line = f"[{bar}] {phase:<10} {message}"[: width - 1]
        self.out.write("\r" + line.ljust(width - 1))
        if phase in TERMINAL_PHASES:
            self.out.write("\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fancy-env build",
        description="Build an image from a Git repository with repo2docker, through a hub's "
        "build service (--hub) or locally; prints the image name.",
    )
    p.add_argument("repo", help="https URL, owner/repo, gh:owner/repo or gl:group/project")
    p.add_argument("--ref", default="", help="branch, tag or commit (default: the remote's HEAD)")
    p.add_argument("--subdir", default="", help="subdirectory of the repository to build")
    p.add_argument("--hub", default="", help="JupyterHub URL (with base_url) to build on")
    p.add_argument("--token", default="", help="JupyterHub API token (or $JUPYTERHUB_API_TOKEN)")
    p.add_argument("--service", default="fancy-env", help="build service name on the hub")
    p.add_argument("--image-prefix", default="fancy-env/", help="local builds: image prefix")
    p.add_argument("--verbose", "-v", action="store_true", help="print every log line")
    return p.parse_args(argv)


async def _fetch_json(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    data = json.dumps(body) if body is not None else None
    try:
        r = await AsyncHTTPClient().fetch(url, method=method, headers=headers, body=data)
    except HTTPClientError as e:
        detail = e.response.body.decode("utf-8", "replace") if e.response else str(e)
        try:
            detail = json.loads(detail).get("message", detail)
        except ValueError:
            pass
        raise RepoError("request", f"{e.code}: {detail}") from None
    return json.loads(r.body)


async def _follow(url: str, token: str, progress: Progress) -> dict[str, Any]:
    """Follow the event stream to a terminal event, reconnecting with Last-Event-ID."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    parser, final = SseParser(), {}

    def on_chunk(chunk: bytes) -> None:
        nonlocal final
        for message in parser.feed_bytes(chunk):
            event = build_event(message)
            if event is None:
                continue
            progress.update(event["phase"], event["message"])
            if event["phase"] in TERMINAL_PHASES:
                final = event

    for _attempt in range(20):
        headers = {"Authorization": f"token {token}", "Last-Event-ID": parser.last_event_id or "0"}
        try:
            await AsyncHTTPClient().fetch(
                url, headers=headers, streaming_callback=on_chunk, request_timeout=24 * 3600
            )
        except (HTTPClientError, OSError):
            await asyncio.sleep(1)
        if final:
            return final
        parser.reset()
    raise RepoError("events", "lost the event stream")


async def build_on_hub(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    token = args.token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        raise RepoError("--token", "a JupyterHub API token is needed (or $JUPYTERHUB_API_TOKEN)")
    base = args.hub.rstrip("/") + f"/services/{args.service}/"
    body = {"repo": args.repo, "ref": args.ref, "subdir": args.subdir}
    record = await _fetch_json(base + "api/builds", token, "POST", body)
    progress.update(record["status"], f"build {record['id']} for {record['repo']}")
    if record["status"] == "built":
        return {"phase": "built", "image": record["image"], "message": "cache hit"}
    return await _follow(base + f"api/builds/{record['id']}/events", token, progress)


async def build_locally(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from .executors.base import BuildFailed, BuildJob
    from .executors.docker import DockerExecutor
    from .git import ls_remote
    from .registry import EngineChecker

    policy = RepoPolicy(
        allowed_http_hosts=frozenset({"127.0.0.1", "localhost"}), allow_private_hosts=True
    )
    spec = parse_repo(args.repo, args.ref, args.subdir, policy)
    progress.update("resolving", f"{spec.url} {spec.ref or 'HEAD'}")
    commit = await ls_remote(spec.url, spec.ref, 60)
    image = image_name(args.image_prefix, spec.key, commit)
    if await EngineChecker().exists(image):
        progress.update("built", f"{image} is already built")
        return {"phase": "built", "image": image}
    job = BuildJob("local", spec.url, spec.ref, commit, spec.subdir, image, push=False)
    try:
        with tempfile.TemporaryDirectory(prefix="fancy-env-fetch-") as tmp:
            os.chmod(tmp, 0o711)  # the fetch user (nobody, when run as root) enters it
            executor = DockerExecutor(fetch_dir=os.path.join(tmp, "fetch"))
            executor.repo_policy = policy
            await executor.run(job, progress.update)
    except BuildFailed as e:
        progress.update("failed", e.reason)
        return {"phase": "failed", "message": e.reason}
    progress.update("built", image)
    return {"phase": "built", "image": image}


def main_build(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    progress = Progress(verbose=args.verbose)
    runner = build_on_hub if args.hub else build_locally
    try:
        final = asyncio.run(runner(args, progress))
    except RepoError as e:
        print(f"fancy-env build: {e.field}: {e.reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if final.get("phase") != "built":
        print(f"fancy-env build: {final.get('message', 'build failed')}", file=sys.stderr)
        return 1
    print(final["image"])
    return 0


if __name__ == "__main__":
    sys.exit(main_build())
