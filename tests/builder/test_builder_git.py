"""Ref resolution: the in-process HTTP resolver (smart and dumb protocol) and `pick_commit`."""

from __future__ import annotations

import subprocess

import pytest

from fancy_env.builder.git import http_ls_remote, ls_remote, parse_pkt_lines, pick_commit
from fancy_env.repos import RepoError
from tests.support.gitserver import GitServer, git

SHA1, SHA2, SHA3 = "1" * 40, "2" * 40, "3" * 40
REFS = {
    "HEAD": SHA1,
    "refs/heads/main": SHA1,
    "refs/heads/dev": SHA2,
    "refs/tags/v1": SHA3,
    "refs/tags/v1^{}": SHA2,
    "refs/pull/7/head": SHA3,
}


@pytest.mark.parametrize(
    ("ref", "commit"),
    [("", SHA1), ("main", SHA1), ("dev", SHA2), ("v1", SHA2), ("refs/pull/7/head", SHA3),
     ("f" * 40, "f" * 40)],
)  # fmt: skip
def test_pick_commit(ref: str, commit: str) -> None:
    assert pick_commit(REFS, ref) == commit


@pytest.mark.parametrize(("refs", "ref"), [(REFS, "nope"), (REFS, "abc123"), ({}, "")])
def test_pick_commit_refuses(refs: dict[str, str], ref: str) -> None:
    with pytest.raises(RepoError) as info:
        pick_commit(refs, ref)
    assert info.value.field == "ref"


def test_smart_advertisement_matches_git(git_server: GitServer) -> None:
    repo = git_server.create("smart")
    git("checkout", "-q", "-b", "dev", cwd=repo.work)
    repo.commit({"a": "1"}, branch="dev")
    git("tag", "-a", "-m", "annotated", "v2", cwd=repo.work)
    git("push", "-q", "origin", "v2", cwd=repo.work)
    adv = subprocess.run(
        ["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(repo.bare)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    body = b"001e# service=git-upload-pack\n0000" + adv
    refs, head = parse_pkt_lines(body)
    listed = dict(
        reversed(line.split("\t"))  # type: ignore[misc]
        for line in git("ls-remote", str(repo.bare)).splitlines()
    )
    assert {k: v for k, v in refs.items() if k != "HEAD"} == {
        k: v for k, v in listed.items() if k != "HEAD"
    }
    assert head == "refs/heads/main"
    assert pick_commit(refs, "v2") == listed["refs/tags/v2^{}"]


async def test_http_resolver_against_dumb_server(git_server: GitServer) -> None:
    repo = git_server.create("dumb")
    first = git("rev-parse", "HEAD", cwd=repo.work)
    repo.tag("v1")
    second = repo.commit({"b": "2"})
    git("tag", "-a", "-m", "annotated", "v2", cwd=repo.work)
    git("push", "-q", "origin", "v2", cwd=repo.work)
    git("update-server-info", cwd=repo.bare)
    for ref, commit in [("", second), ("main", second), ("v1", first), ("v2", second)]:
        assert await http_ls_remote(repo.url, ref, 10) == commit
        assert await ls_remote(repo.url, ref, 10) == commit
    with pytest.raises(RepoError, match="not a branch or tag"):
        await http_ls_remote(repo.url, "nope", 10)
    with pytest.raises(RepoError, match="HTTP 404"):
        await http_ls_remote(git_server.base_url + "/missing.git", "", 10)
    with pytest.raises(RepoError, match="could not read the repository"):
        await ls_remote(git_server.base_url + "/missing.git", "", 10)


async def test_http_resolver_redirects(git_server: GitServer) -> None:
    from tornado.httpserver import HTTPServer
    from tornado.web import Application, RedirectHandler, StaticFileHandler

    from tests.support.net import free_port

    repo = git_server.create("real")
    port = free_port()
    app = Application(
        [
            (r"/alias/info/refs", RedirectHandler, {"url": "/real.git/info/refs",
                                                    "permanent": True}),
            (r"/away/info/refs", RedirectHandler, {"url": repo.url + "/info/refs"}),
            (r"/(.*)", StaticFileHandler, {"path": str(git_server.root / "srv")}),
        ]
    )  # fmt: skip

    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    try:
        here = f"http://127.0.0.1:{port}"
        head = git("rev-parse", "HEAD", cwd=repo.work)
        # same origin: /alias -> /real.git is followed
        assert await http_ls_remote(f"{here}/alias", "main", 10) == head
        assert await http_ls_remote(f"{here}/alias", "", 10) == head
        # another origin: refused with a reason
        with pytest.raises(RepoError, match="redirects to another host"):
            await http_ls_remote(f"{here}/away", "main", 10)
    finally:
        server.stop()
