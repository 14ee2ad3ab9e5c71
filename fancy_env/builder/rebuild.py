"""Who may force a rebuild of an image, and how often (pure: no I/O; see `check_rebuild`).

A rebuild (`POST api/builds` with `"rebuild": true`) builds a commit again without the
layer cache, for when a build went wrong for reasons outside the commit (a package index
hiccup, a moved dependency). It is allowed for the image's owners (users who built,
requested or joined a build of that repository and commit before) and for admins, at most
once per `rebuild_interval` seconds per user and image (admins included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RebuildAsk:
    """A rebuild request, with what the service knows about its user and image."""

    user: str
    admin: bool
    owner: bool  # the user asked for a build of this image before
    last: float | None  # when this user's newest rebuild of this image was created
    now: float
    interval: float  # rebuild_interval (0 = no limit)


@dataclass(frozen=True)
class RebuildRefusal:
    status: int
    reason: str
    retry_after: int = 0


def check_rebuild(ask: RebuildAsk) -> RebuildRefusal | None:
    """None when the rebuild may go ahead; else the refusal (403, or 429 with Retry-After)."""
    if not (ask.admin or ask.owner):
        return RebuildRefusal(
            403,
            "only a user who built this repository and commit before, or an admin, may "
            "rebuild it; build it first (a normal build answers from the cache)",
        )
    if ask.interval > 0 and ask.last is not None:
        wait = ask.last + ask.interval - ask.now
        if wait > 0:
            retry = max(1, math.ceil(wait))
            return RebuildRefusal(
                429,
                f"you rebuilt this image {max(0, ask.now - ask.last):.0f} s ago; one rebuild "
                f"per image every {ask.interval:g} s is allowed (rebuild_interval = "
                f"{ask.interval:g}); try again in {retry} s",
                retry,
            )
    return None
