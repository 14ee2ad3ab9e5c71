"""`fancy-env up`'s state directory is its owner's only (issue 9)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fancy_env.up import private_state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    (state / "jupyterhub.log").write_text("old log\n")
    os.chmod(state / "jupyterhub.log", 0o644)
    (state / "builder").mkdir(mode=0o755)
    os.chmod(state / "builder", 0o755)
    private_state(state)
    assert mode(state) == 0o700 and mode(state / "builder") == 0o700
    assert (state / "jupyterhub.log").read_text() == "old log\n"  # appended to, not cut
    for name in ("jupyterhub.log", "jupyterhub.sqlite"):
        assert mode(state / name) == 0o600, name
    private_state(state)  # every start: idempotent
    assert sorted(p.name for p in state.iterdir()) == [
        "builder", "jupyterhub.log", "jupyterhub.sqlite",
    ]  # fmt: skip
