"""Image retention policy (pure, no I/O): which built images to remove, and why.

Input: every image known (from the images table, the local engine and the registry), the
images in use (running servers, active environment links, builds in progress, containers),
and two knobs: keep the newest `keep_per_repo` images of each repository, and drop images
not used for `max_unused_days` days (0 = off). An image in use is never removed.

    decide(images, in_use, RetentionPolicy(keep_per_repo=2), now) -> [Decision, ...]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True)
class RetentionPolicy:
    keep_per_repo: int = 3
    max_unused_days: float = 30.0

    def __post_init__(self) -> None:
        if self.keep_per_repo < 1:
            raise ValueError("keep_per_repo must be at least 1")
        if self.max_unused_days < 0:
            raise ValueError("max_unused_days must be 0 (off) or more")


@dataclass(frozen=True)
class ImageInfo:
    """One image name (`repository:tag`) this service built, wherever it is stored."""

    name: str
    repo: str  # the image repository (name without tag): one per source repository
    created: float
    last_used: float = 0.0
    size: int = 0
    digest: str = ""  # the registry manifest digest, when known

    @property
    def used(self) -> float:
        return max(self.created, self.last_used)


@dataclass(frozen=True)
class Decision:
    image: ImageInfo
    remove: bool
    reason: str


def decide(
    images: Iterable[ImageInfo],
    in_use: Mapping[str, str],
    policy: RetentionPolicy,
    now: float,
) -> list[Decision]:
    """A decision for every image, newest first within each repository.

    `in_use` maps image names to why they are in use (e.g. "running server alice/"). An
    image's rank is its position by creation time (newest first) among all images of its
    repository, in use or not: in-use images are kept on top of the newest N."""
    by_repo: dict[str, list[ImageInfo]] = {}
    for image in images:
        by_repo.setdefault(image.repo, []).append(image)
    decisions: list[Decision] = []
    for repo in sorted(by_repo):
        ranked = sorted(by_repo[repo], key=lambda i: (-i.created, i.name))
        for rank, image in enumerate(ranked):
            decisions.append(_decide_one(image, rank, in_use, policy, now))
    return decisions


def _decide_one(
    image: ImageInfo, rank: int, in_use: Mapping[str, str], policy: RetentionPolicy, now: float
) -> Decision:
    if image.name in in_use:
        return Decision(image, False, f"in use: {in_use[image.name]}")
    if policy.max_unused_days and now - image.used > policy.max_unused_days * DAY:
        days = (now - image.used) / DAY
        return Decision(
            image, True, f"unused for {days:.0f} days (max_unused_days={policy.max_unused_days:g})"
        )
    if rank >= policy.keep_per_repo:
        return Decision(
            image,
            True,
            f"number {rank + 1} by age in its repository (keep_per_repo={policy.keep_per_repo})",
        )
    return Decision(image, False, f"number {rank + 1} of the newest {policy.keep_per_repo}")


def registry_digests_to_delete(decisions: Iterable[Decision]) -> list[tuple[str, str]]:
    """(repository, digest) pairs safe to delete from the registry.

    Deleting a manifest by digest removes every tag pointing at it: a digest shared with a
    kept image of the same repository is left alone (only the removed tag's record goes)."""
    kept: set[tuple[str, str]] = set()
    removed: list[tuple[str, str]] = []
    for d in decisions:
        if not d.image.digest:
            continue
        key = (d.image.repo, d.image.digest)
        if d.remove:
            if key not in removed:
                removed.append(key)
        else:
            kept.add(key)
    return [key for key in removed if key not in kept]


def total_bytes(decisions: Iterable[Decision]) -> int:
    """Bytes of the removed images (layers shared between images are counted in each)."""
    return sum(d.image.size for d in decisions if d.remove)
