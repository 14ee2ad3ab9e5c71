"""Where the per-build checkouts go: the unprivileged fetch keeps working under a 0700 state
dir (as `fancy-env up` makes it), and a fetch directory planted by someone else is refused."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fancy_env.builder.checkout import BuildDirs
from fancy_env.builder.confine import CheckoutError
from fancy_env.builder.executors.docker import DockerExecutor

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the fetch drops privileges only as root")


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A world-traversable temporary directory (pytest's tmp_path has 0700 parents)."""
    path = Path(tempfile.mkdtemp(prefix="fancy-env-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@as_root
@pytest.mark.parametrize(
    ("state_mode", "in_state_dir"),
    [(0o700, False), (0o755, True), (0o711, True)],
)
def test_default_fetch_dir_is_reachable_by_the_fetch_user(
    open_tmp: Path, monkeypatch: pytest.MonkeyPatch, state_mode: int, in_state_dir: bool
) -> None:
    tmp_path = open_tmp
    state = tmp_path / "state"
    state.mkdir(mode=state_mode)
    os.chmod(state, state_mode)
    monkeypatch.chdir(state)
    fetch_dir = DockerExecutor().fetch_dir
    assert (fetch_dir == str(state / "fetch")) is in_state_dir, fetch_dir
    if not in_state_dir:
        assert Path(fetch_dir).parent == Path(tempfile.gettempdir())
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        monkeypatch.chdir(other)
        assert DockerExecutor().fetch_dir != fetch_dir, "one fetch dir per service instance"


@as_root
def test_a_planted_fetch_dir_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "fetch"
    planted.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(planted, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(CheckoutError, match="not a directory of the service's own"):
        BuildDirs(str(planted), owner_can_enter=True).make("b1")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(CheckoutError, match="not a directory of the service's own"):
        BuildDirs(str(link), owner_can_enter=True).make("b1")
