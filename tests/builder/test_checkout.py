"""The fetch step against real Git remotes on loopback (no Docker): policy, pinning, links.

The service's fetch (`fancy_env.builder.checkout.fetch_checkout`) is called directly, as the
Docker executor calls it, with the unprivileged fetch user when the tests run as root.
End-to-end versions through the HTTP API and repo2docker are in
tests/integration/test_builder_fetch.py.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fancy_env.builder.checkout import (
    BuildDirs,
    FetchSettings,
    fetch_checkout,
    reachable_by,
)
from fancy_env.builder.confine import CheckoutError
from fancy_env.builder.git import GitUser, http_ls_remote
from fancy_env.repos import RepoPolicy
from tests.support.canary import Canary
from tests.support.gitserver import GitServer, git

LOOPBACK = RepoPolicy(
    allowed_http_hosts=frozenset({"127.0.0.1"}), allowed_private_hosts=frozenset({"127.0.0.1"})
)
# http for any host: a submodule URL then meets the address checks, not the http rule
ANY_HTTP = RepoPolicy(
    allowed_http_hosts=frozenset({"*"}), allowed_private_hosts=frozenset({"127.0.0.1"})
)


@pytest.fixture
def fetch_root() -> Iterator[Path]:
    """A fetch directory the unprivileged fetch user can reach (/tmp, mode 0711)."""
    root = Path(tempfile.mkdtemp(prefix="fancy-env-fetch-test-", dir="/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def settings(
    build_dir: Path, allow_submodules: bool = False, policy: RepoPolicy = LOOPBACK
) -> FetchSettings:
    user = GitUser()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        user = GitUser(nobody.pw_uid, nobody.pw_gid, str(build_dir))
    return FetchSettings(policy=policy, allow_submodules=allow_submodules, user=user, timeout=60)


async def fetch(
    root: Path, url: str, commit: str, subdir: str = "", allow_submodules: bool = False,
    policy: RepoPolicy = LOOPBACK,
) -> tuple[str, list[str]]:  # fmt: skip
    dirs = BuildDirs(str(root / "fetch"), owner_can_enter=True)
    build_dir = dirs.make("b1")
    notes: list[str] = []
    try:
        context = await fetch_checkout(
            url, commit, subdir, build_dir, settings(Path(build_dir), allow_submodules, policy),
            notes.append,
        )  # fmt: skip
        src = os.path.realpath(os.path.join(build_dir, "src"))  # noqa: ASYNC240
        return os.path.relpath(context, src), notes  # noqa: ASYNC240
    finally:
        dirs.remove(build_dir)
        assert os.listdir(root / "fetch") == []


async def test_fetch_checks_out_the_commit_as_the_fetch_user(
    git_server: GitServer, fetch_root: Path
) -> None:
    repo = git_server.create("plain", {"a.txt": "one\n", "env/Dockerfile": "FROM x\n"})
    first = git("rev-parse", "HEAD", cwd=repo.work)
    repo.commit({"a.txt": "two\n"})
    dirs = BuildDirs(str(fetch_root / "fetch"), owner_can_enter=True)
    build_dir = dirs.make("b1")
    context = await fetch_checkout(
        repo.url, first, "env", build_dir, settings(Path(build_dir)), lambda m: None
    )
    src = Path(build_dir) / "src"
    assert Path(context) == (src / "env").resolve()
    assert (src / "a.txt").read_text() == "one\n"
    owners = {p.lstat().st_uid for p in src.rglob("*")}
    assert owners == {os.geteuid()}, "the checkout is handed back to the service's user"
    dirs.remove(build_dir)
    assert not os.path.lexists(build_dir)  # noqa: ASYNC240


@pytest.mark.parametrize(
    ("link", "target", "subdir", "named"),
    [
        ("r", "/", "r{decoy}", "r"),
        ("binder", "{decoy}", "", "binder"),
        ("apt.txt", "{decoy}/secret", "", "apt.txt"),
        ("Dockerfile", "{decoy}/secret", "", "Dockerfile"),
        (".dockerignore", "{decoy}/secret", "", ".dockerignore"),
        ("deep/x/requirements.txt", "../../../../../../../../{decoy}/secret", "", "deep/x"),
    ],
)
async def test_links_out_of_the_checkout_are_refused(
    git_server: GitServer, fetch_root: Path, tmp_path: Path, link: str, target: str,
    subdir: str, named: str,
) -> None:  # fmt: skip
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "secret").write_text("TOP-SECRET\n")
    (decoy / "secret").chmod(0o600)
    repo = git_server.create("links", {"Dockerfile": "FROM x\n"} if link != "Dockerfile" else {})
    commit = repo.symlink(link, target.format(decoy=decoy))
    with pytest.raises(CheckoutError) as info:
        await fetch(fetch_root, repo.url, commit, subdir.format(decoy=decoy))
    assert named in info.value.reason and "outside the repository" in info.value.reason
    assert "TOP-SECRET" not in info.value.reason
    assert (decoy / "secret").read_text() == "TOP-SECRET\n"


async def test_links_inside_the_checkout_are_fine(git_server: GitServer, fetch_root: Path) -> None:
    repo = git_server.create("inside", {"real/Dockerfile": "FROM x\n", "real/apt.txt": "curl\n"})
    repo.symlink("env", "real")
    commit = repo.symlink("real/binder", ".")
    context, _ = await fetch(fetch_root, repo.url, commit, "env")
    assert context == "real"


async def test_missing_subdir_and_commit(git_server: GitServer, fetch_root: Path) -> None:
    repo = git_server.create("missing")
    commit = git("rev-parse", "HEAD", cwd=repo.work)
    with pytest.raises(CheckoutError, match="'nope' does not exist"):
        await fetch(fetch_root, repo.url, commit, "nope")
    with pytest.raises(CheckoutError, match="checking out commit 111111111111 failed"):
        await fetch(fetch_root, repo.url, "1" * 40)


async def test_submodules_off_by_default(git_server: GitServer, fetch_root: Path) -> None:
    with Canary() as canary:
        repo = git_server.create("withsub")
        commit = repo.gitlink("lib", f"http://127.0.0.1:{canary.port}/x.git")
        _, notes = await fetch(fetch_root, repo.url, commit)
        assert any("1 submodule(s); they are not fetched" in n for n in notes), notes
    assert canary.connections == 0


async def test_submodules_on_fetches_checked_urls(git_server: GitServer, fetch_root: Path) -> None:
    sub = git_server.create("sub", {"lib.py": "X = 1\n"})
    sub_commit = git("rev-parse", "HEAD", cwd=sub.work)
    sub.commit({"lib.py": "X = 2\n"})
    repo = git_server.create("parent")
    commit = repo.gitlink("vendor/sub", "../sub.git", sub_commit)
    dirs = BuildDirs(str(fetch_root / "fetch"), owner_can_enter=True)
    build_dir = dirs.make("b1")
    notes: list[str] = []
    await fetch_checkout(
        repo.url, commit, "", build_dir, settings(Path(build_dir), True), notes.append
    )
    assert (Path(build_dir) / "src/vendor/sub/lib.py").read_text() == "X = 1\n"
    assert any(f"from {git_server.base_url}/sub.git" in n for n in notes), notes
    dirs.remove(build_dir)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://2130706433:{port}/x.git", "2130706433 resolves to a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/x.git", "::ffff:127.0.0.1 is a loopback address"),
        ("http://0x7f.1:{port}/x.git", "0x7f.1 resolves to a loopback address"),
        ("http://localhost:{port}/x.git", "localhost is a loopback address"),
        ("https://127.0.0.2:{port}/x.git", "loopback address"),
        ("file:///etc", "file: URLs are not allowed"),
        ("ext::sh", "https URL"),
    ],
)
async def test_submodules_on_refuse_what_a_typed_url_would(
    git_server: GitServer, fetch_root: Path, url: str, reason: str
) -> None:
    with Canary() as canary:
        repo = git_server.create("badsub")
        commit = repo.gitlink("lib", url.format(port=canary.port))
        with pytest.raises(CheckoutError) as info:
            await fetch(fetch_root, repo.url, commit, allow_submodules=True, policy=ANY_HTTP)
        assert "submodule 'lib'" in info.value.reason and reason in info.value.reason
    assert canary.connections == 0


async def test_clone_time_redirect_is_refused(tmp_path: Path, fetch_root: Path) -> None:
    with Canary() as canary:
        server = GitServer(tmp_path / "redir", redirect_to=f"http://127.0.0.1:{canary.port}")
        server.start()
        try:
            repo = server.create("moved")
            commit = git("rev-parse", "HEAD", cwd=repo.work)
            assert await http_ls_remote(repo.url, "main", 10) == commit  # the ref lookup works
            with pytest.raises(CheckoutError, match="redirected"):
                await fetch(fetch_root, repo.url, commit)
        finally:
            server.stop()
    assert canary.connections == 0


def test_sweep_removes_only_stale_build_dirs(tmp_path: Path) -> None:
    dirs = BuildDirs(str(tmp_path / "fetch"), owner_can_enter=False)
    active = dirs.make("live")
    stale = tmp_path / "fetch" / "build-dead-0123"
    (stale / "src").mkdir(parents=True)
    (stale / "src" / "up").symlink_to(tmp_path)
    foreign = tmp_path / "fetch" / "keep-me"
    foreign.mkdir()
    assert dirs.sweep() == ["build-dead-0123"]
    assert Path(active).is_dir() and foreign.is_dir() and not stale.exists()
    assert tmp_path.is_dir(), "removal never follows a link"


def test_reachable_by(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0o700)
    assert not reachable_by(str(closed / "inner"), 65534, 65534)
    closed.chmod(0o711)
    assert reachable_by(str(closed / "inner"), 0, 0)
