"""Resolving a ref to a commit with `git ls-remote` (an asyncio subprocess with a timeout)."""

from __future__ import annotations

import asyncio
import os

from ..repos import COMMIT_SHA, RepoError

GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/true",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_PROTOCOL_FROM_USER": "0",
    "GIT_ALLOW_PROTOCOL": "https:http",
    "LC_ALL": "C",
}
GIT_CONFIG = ["-c", "http.followRedirects=false", "-c", "credential.helper="]


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV)
    return env


def parse_ls_remote(output: str) -> dict[str, str]:
    refs: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, name = line.partition("\t")
        if name and COMMIT_SHA.fullmatch(sha):
            refs[name] = sha
    return refs


def pick_commit(refs: dict[str, str], ref: str) -> str:
    """The commit for `ref` ("" = HEAD) among the remote's refs; RepoError if none."""
    if not ref:
        if "HEAD" in refs:
            return refs["HEAD"]
        raise RepoError("ref", "the repository has no HEAD; give a branch, tag or commit")
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", ref):
        if name in refs:
            return refs[name]
    if COMMIT_SHA.fullmatch(ref):
        return ref
    raise RepoError(
        "ref", f"{ref!r} is not a branch or tag of this repository (or give a full commit)"
    )


async def ls_remote(url: str, ref: str, timeout: float) -> str:  # noqa: ASYNC109
    """Resolve `ref` of `url` to a commit; RepoError when it can't."""
    patterns = ["HEAD"] if not ref else [ref, f"{ref}^{{}}"]
    if ref and COMMIT_SHA.fullmatch(ref):
        return ref
    proc = await asyncio.create_subprocess_exec(
        "git", *GIT_CONFIG, "ls-remote", "--", url, *patterns,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=git_env(),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RepoError("repo", f"the repository did not answer within {timeout:g}s") from None
    if proc.returncode != 0:
        detail = err.decode("utf-8", "replace").strip().splitlines()
        last = detail[-1][:200] if detail else f"git exited with {proc.returncode}"
        raise RepoError("repo", f"could not read the repository ({last})")
    return pick_commit(parse_ls_remote(out.decode("utf-8", "replace")), ref)
