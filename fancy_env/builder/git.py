"""Resolving a ref to a commit with `git ls-remote` (an asyncio subprocess with a timeout)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..repos import COMMIT_SHA, RepoError
from .confine import GIT_CONFIG, GIT_ENV, fetch_env
from .forge_auth import GitAuth, git_env_for
from .podfetch import MAX_GIT_OUTPUT, clean_env

__all__ = ["GIT_CONFIG", "GIT_ENV", "git_env", "http_ls_remote", "ls_remote", "run_git"]


class RepoAccessError(RepoError):
    """The forge refused to show the repository (HTTP `code`: 401, 403 or 404)."""

    def __init__(self, code: int) -> None:
        super().__init__("repo", f"could not read the repository (HTTP {code})")
        self.code = code


#: what git says when the server wants a credential it did not get (or refused)
_GIT_AUTH_FAILURES = ("Authentication failed", "could not read Username", "returned error: 403")


def git_env(auth: GitAuth | None = None, url: str = "") -> dict[str, str]:
    """The resolver's git environment; with `auth`'s header when it applies to `url`."""
    return clean_env(os.environ, {**GIT_ENV, **git_env_for(auth, url)})


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


async def ls_remote(
    url: str,
    ref: str,
    timeout: float,  # noqa: ASYNC109
    auth: GitAuth | None = None,
    check: bool = False,
) -> str:
    """Resolve `ref` of `url` to a commit; RepoError when it can't. A full commit is
    returned as it is, without asking the remote unless `check` (an access check)."""
    sha = bool(ref and COMMIT_SHA.fullmatch(ref))
    patterns = ["HEAD"] if not ref or sha else [ref, f"{ref}^{{}}"]
    if sha and not check:
        return ref
    proc = await asyncio.create_subprocess_exec(
        "git", *GIT_CONFIG, "ls-remote", "--", url, *patterns,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=git_env(auth, url),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RepoError("repo", f"the repository did not answer within {timeout:g}s") from None
    if proc.returncode != 0:
        text = err.decode("utf-8", "replace")
        if any(failure in text for failure in _GIT_AUTH_FAILURES):
            raise RepoAccessError(403 if "error: 403" in text else 401)
        detail = (auth.scrub(text) if auth else text).strip().splitlines()
        last = detail[-1][:200] if detail else f"git exited with {proc.returncode}"
        raise RepoError("repo", f"could not read the repository ({last})")
    if sha:
        return ref
    return pick_commit(parse_ls_remote(out.decode("utf-8", "replace")), ref)


MAX_REFS_BYTES = 32 << 20


REFS_PATH = "/info/refs?service=git-upload-pack"


async def _fetch_refs(client: Any, base: str, options: dict[str, Any]) -> tuple[Any, str]:
    """GET the ref advertisement, following up to 3 same-origin redirects."""
    from tornado.httpclient import HTTPClientError

    url = base + REFS_PATH
    for _ in range(4):
        try:
            return await client.fetch(url, **options), url[: -len(REFS_PATH)]
        except HTTPClientError as e:
            location = e.response.headers.get("Location") if e.response else None
            if e.code not in (301, 302, 303, 307, 308) or not location:
                raise
            target = urljoin(url, location)
            if urlsplit(target)[:2] != urlsplit(url)[:2] or not target.endswith(REFS_PATH):
                raise RepoError(
                    "repo", "the repository redirects to another host; give the final URL"
                ) from None
            url = target
    raise RepoError("repo", "the repository redirects too many times")


_PKT_LEN = re.compile(rb"[0-9a-fA-F]{4}")


def _malformed(pos: int) -> RepoError:
    return RepoError(
        "repo",
        f"the repository's ref advertisement is malformed (bad pkt-line length at byte {pos}); "
        "is this a Git server?",
    )


def parse_pkt_lines(body: bytes) -> tuple[dict[str, str], str]:
    """Smart-HTTP (protocol v0) ref advertisement -> (refs, HEAD's symref target or "").

    RepoError (field `repo`) for a length prefix that is not 4 hex digits, is 1-3, or runs
    past the end of the body."""
    refs: dict[str, str] = {}
    head_target = ""
    pos = 0
    while pos < len(body):
        if not _PKT_LEN.fullmatch(body[pos : pos + 4]):
            raise _malformed(pos)
        size = int(body[pos : pos + 4], 16)
        if size == 0:
            pos += 4
            continue
        if size < 4 or pos + size > len(body):
            raise _malformed(pos)
        line = body[pos + 4 : pos + size].decode("utf-8", "replace").rstrip("\n")
        pos += size
        if line.startswith("#"):
            continue
        line, _, caps = line.partition("\0")
        sha, _, name = line.partition(" ")
        for cap in caps.split():
            if cap.startswith("symref=HEAD:"):
                head_target = cap[len("symref=HEAD:") :]
        if COMMIT_SHA.fullmatch(sha) and name:
            refs[name] = sha
    return refs, head_target


async def http_ls_remote(
    url: str,
    ref: str,
    timeout: float,  # noqa: ASYNC109
    auth: GitAuth | None = None,
    check: bool = False,
) -> str:
    """Resolve `ref` with one HTTP request (smart or dumb protocol), no git process.

    This is the hot path of a cache hit. It follows redirects only within the same origin
    (say `/project` -> `/project.git`), reads at most MAX_REFS_BYTES (the client's
    `max_body_size`: a longer body is cut off while it arrives, never buffered whole), and
    falls back to `git ls-remote` for anything it does not understand or that is too long.
    `auth` (a user's credential) is sent only when it applies to this exact origin; redirects
    are followed only within that origin. A full commit is returned without asking the
    remote unless `check` (an access check: the remote must show its refs to this caller).
    """
    from tornado.httpclient import AsyncHTTPClient

    if ref and COMMIT_SHA.fullmatch(ref) and not check:
        return ref
    client = AsyncHTTPClient(force_instance=True, max_body_size=MAX_REFS_BYTES)
    try:
        return await _http_ls_remote(client, url, ref, timeout, auth)
    finally:
        client.close()


async def _http_ls_remote(
    client: Any,
    url: str,
    ref: str,
    timeout: float,  # noqa: ASYNC109
    auth: GitAuth | None,
) -> str:
    from tornado.httpclient import HTTPClientError

    headers = {"User-Agent": "git/2.39 (fancy-env)", "Accept": "*/*"}
    if auth is not None and auth.applies_to(url):
        headers["Authorization"] = auth.header
    else:
        auth = None
    options: dict[str, Any] = {
        "follow_redirects": False, "request_timeout": timeout, "connect_timeout": timeout,
        "headers": headers,
    }  # fmt: skip
    try:
        r, base = await _fetch_refs(client, url.rstrip("/"), options)
    except HTTPClientError as e:
        if e.code in (401, 403, 404):
            raise RepoAccessError(e.code) from None
        return await ls_remote(url, ref, timeout, auth, check=True)
    except OSError as e:
        raise RepoError("repo", f"could not reach the repository ({e})") from None
    if len(r.body) > MAX_REFS_BYTES:
        return await ls_remote(url, ref, timeout, auth, check=True)
    if r.headers.get("Content-Type", "").startswith("application/x-git-upload-pack-"):
        refs, head = parse_pkt_lines(r.body)
        if head and head in refs:
            refs.setdefault("HEAD", refs[head])
    else:
        refs = parse_ls_remote(r.body.decode("utf-8", "replace"))
        if not ref:
            try:
                head_file = await client.fetch(f"{base}/HEAD", **options)
            except (HTTPClientError, OSError):
                return await ls_remote(url, ref, timeout, auth, check=True)
            target = head_file.body.decode("utf-8", "replace").strip()
            if target.startswith("ref: ") and target[5:] in refs:
                refs["HEAD"] = refs[target[5:]]
            elif COMMIT_SHA.fullmatch(target):
                refs["HEAD"] = target
    if not refs:
        return await ls_remote(url, ref, timeout, auth, check=True)
    return pick_commit(refs, ref)


# ---- fetching a checkout (the Docker executor; see fancy_env.builder.checkout) --------------


def resolve_pin(host: str, port: int | None, scheme: str, address: str) -> list[str]:
    """`-c http.curloptResolve=host:port:addr`: connect to the address the policy approved.

    Git (curl) would otherwise resolve the name again, and a DNS server could answer with
    another address the second time (DNS rebinding). Nothing to pin for an IP literal.
    """
    try:
        ipaddress.ip_address(host)
        return []
    except ValueError:
        pass
    port = port or (443 if scheme == "https" else 80)
    addr = f"[{address}]" if ":" in address else address
    return ["-c", f"http.curloptResolve={host}:{port}:{addr}"]


@dataclass
class GitUser:
    """Who git runs as: uid/gid (None = the service's own) and its HOME."""

    uid: int | None = None
    gid: int | None = None
    home: str = "/nonexistent"


async def run_git(
    argv: list[str],
    cwd: str,
    timeout: float,  # noqa: ASYNC109
    user: GitUser | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run `argv` (a `confine.fetch_argv` command line) in `cwd` with the fetch environment
    (`confine.fetch_env`, plus `extra_env`: a credential's header config); (code, output).
    The process is killed when the timeout passes or the calling task is cancelled."""
    user = user or GitUser()
    env = clean_env(os.environ, {**fetch_env(user.home), **(extra_env or {})})
    extra: dict[str, Any] = {}
    if user.uid is not None:
        extra = {"user": user.uid, "group": user.gid, "extra_groups": []}
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True, **extra,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc.returncode or 0, out[-MAX_GIT_OUTPUT:].decode("utf-8", "replace")
