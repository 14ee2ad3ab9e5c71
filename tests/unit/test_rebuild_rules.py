"""Who may rebuild an image and how often (fancy_env.builder.rebuild, a pure module)."""

from __future__ import annotations

import pytest

from fancy_env.builder.rebuild import RebuildAsk, check_rebuild

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("admin", "owner", "last", "interval", "status", "retry"),
    [
        (False, True, None, 300, None, 0),  # owner, first rebuild
        (True, False, None, 300, None, 0),  # admin, never built it
        (False, False, None, 300, 403, 0),  # neither owner nor admin
        (False, False, NOW - 10, 0, 403, 0),  # no limit does not make a stranger an owner
        (False, True, NOW - 10, 300, 429, 290),  # too soon
        (True, True, NOW - 299.5, 300, 429, 1),  # admins are limited too; at least 1 s
        (False, True, NOW - 300, 300, None, 0),  # exactly the interval later
        (False, True, NOW - 10, 0, None, 0),  # 0 = no limit
        (False, True, NOW + 5, 300, 429, 305),  # a clock step back still waits
    ],
)
def test_rules(
    admin: bool, owner: bool, last: float | None, interval: float, status: int | None, retry: int
) -> None:
    ask = RebuildAsk("alice", admin, owner, last, NOW, interval)
    refusal = check_rebuild(ask)
    if status is None:
        assert refusal is None
        return
    assert refusal is not None and refusal.status == status
    assert refusal.retry_after == retry
    if status == 429:
        assert f"rebuild_interval = {interval:g}" in refusal.reason
        assert f"try again in {retry} s" in refusal.reason
    else:
        assert "admin" in refusal.reason
