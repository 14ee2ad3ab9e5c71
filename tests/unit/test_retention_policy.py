"""The image retention policy (pure): what goes, what stays, and why."""

from __future__ import annotations

import pytest

from fancy_env.builder.gc import GCReport
from fancy_env.builder.retention import (
    DAY,
    Decision,
    ImageInfo,
    RetentionPolicy,
    decide,
    registry_digests_to_delete,
    total_bytes,
)

NOW = 1_000 * DAY


def img(repo: str, n: int, age_days: float = 0.0, used_days_ago: float | None = None,
        size: int = 10, digest: str = "") -> ImageInfo:  # fmt: skip
    """Image number `n` of `repo` (higher n = newer), built `age_days` (+ n minutes) ago."""
    created = NOW - age_days * DAY - (100 - n) * 60
    last = NOW - used_days_ago * DAY if used_days_ago is not None else 0.0
    return ImageInfo(f"r/{repo}:c{n}", f"r/{repo}", created, last, size, digest)


def removed(decisions: list[Decision]) -> list[str]:
    return sorted(d.image.name for d in decisions if d.remove)


@pytest.mark.parametrize(
    ("images", "in_use", "policy", "expected"),
    [
        # keep the newest N per repository
        ([img("a", i) for i in range(5)], {}, RetentionPolicy(2, 0),
         ["r/a:c0", "r/a:c1", "r/a:c2"]),
        ([img("a", i) for i in range(2)], {}, RetentionPolicy(2, 0), []),
        ([img("a", 0)], {}, RetentionPolicy(1, 0), []),
        # repositories are counted separately
        ([img("a", 0), img("a", 1), img("b", 0), img("b", 1)], {}, RetentionPolicy(1, 0),
         ["r/a:c0", "r/b:c0"]),
        # an in-use image survives, and does not take a place of the newest N
        ([img("a", i) for i in range(4)], {"r/a:c0": "running server alice/"},
         RetentionPolicy(2, 0), ["r/a:c1"]),
        # an in-use image among the newest N: still only N + nothing else kept
        ([img("a", i) for i in range(4)], {"r/a:c3": "link"}, RetentionPolicy(2, 0),
         ["r/a:c0", "r/a:c1"]),
        # unused for D days: removed even if it is among the newest N
        ([img("a", 0, age_days=40), img("a", 1, age_days=1)], {}, RetentionPolicy(3, 30),
         ["r/a:c0"]),
        # ... unless it was used (requested) recently
        ([img("a", 0, age_days=40, used_days_ago=2)], {}, RetentionPolicy(3, 30), []),
        # ... or is in use
        ([img("a", 0, age_days=400)], {"r/a:c0": "container x"}, RetentionPolicy(3, 30), []),
        # D = 0 turns the age rule off
        ([img("a", 0, age_days=4000)], {}, RetentionPolicy(3, 0), []),
        # everything in use: nothing goes
        ([img("a", i) for i in range(3)], {f"r/a:c{i}": "build" for i in range(3)},
         RetentionPolicy(1, 1), []),
        ([], {}, RetentionPolicy(), []),
    ],
)  # fmt: skip
def test_decide(
    images: list[ImageInfo], in_use: dict[str, str], policy: RetentionPolicy, expected: list[str]
) -> None:
    decisions = decide(images, in_use, policy, NOW)
    assert removed(decisions) == expected
    assert len(decisions) == len(images)
    for d in decisions:
        assert not (d.remove and d.image.name in in_use)


@pytest.mark.parametrize(
    ("images", "in_use", "policy", "name", "reason"),
    [
        ([img("a", i) for i in range(3)], {}, RetentionPolicy(2, 0), "r/a:c0",
         "number 3 by age in its repository (keep_per_repo=2)"),
        ([img("a", i) for i in range(3)], {}, RetentionPolicy(2, 0), "r/a:c2",
         "number 1 of the newest 2"),
        ([img("a", 0)], {"r/a:c0": "running server bob/"}, RetentionPolicy(1, 0), "r/a:c0",
         "in use: running server bob/"),
        ([img("a", 0, age_days=45)], {}, RetentionPolicy(1, 30), "r/a:c0",
         "unused for 45 days (max_unused_days=30)"),
    ],
)  # fmt: skip
def test_reasons(
    images: list[ImageInfo], in_use: dict[str, str], policy: RetentionPolicy, name: str,
    reason: str,
) -> None:  # fmt: skip
    by_name = {d.image.name: d for d in decide(images, in_use, policy, NOW)}
    assert by_name[name].reason == reason


def test_order_is_by_creation_not_by_name() -> None:
    older = ImageInfo("r/a:zzz", "r/a", NOW - 100)
    newer = ImageInfo("r/a:aaa", "r/a", NOW - 1)
    assert removed(decide([older, newer], {}, RetentionPolicy(1, 0), NOW)) == ["r/a:zzz"]


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        # a removed image's digest goes
        ([(True, "r/a", "sha256:1"), (False, "r/a", "sha256:2")], [("r/a", "sha256:1")]),
        # a digest shared with a kept tag stays (deleting it would delete the kept tag too)
        ([(True, "r/a", "sha256:1"), (False, "r/a", "sha256:1")], []),
        # ... but the same digest in another repository does not protect it
        ([(True, "r/a", "sha256:1"), (False, "r/b", "sha256:1")], [("r/a", "sha256:1")]),
        # two removed tags of one digest: one delete
        ([(True, "r/a", "sha256:1"), (True, "r/a", "sha256:1")], [("r/a", "sha256:1")]),
        # unknown digest (engine only): nothing to delete in the registry
        ([(True, "r/a", "")], []),
    ],
)
def test_registry_digests(decisions: list[tuple[bool, str, str]], expected: list[tuple]) -> None:
    ds = [
        Decision(ImageInfo(f"{repo}:t{i}", repo, 0.0, digest=digest), remove, "")
        for i, (remove, repo, digest) in enumerate(decisions)
    ]
    assert registry_digests_to_delete(ds) == expected


def test_total_bytes_and_report() -> None:
    images = [img("a", i, size=100 * (i + 1)) for i in range(3)]
    decisions = decide(images, {}, RetentionPolicy(1, 0), NOW)
    assert total_bytes(decisions) == 100 + 200
    report = GCReport(dry_run=True, decisions=decisions).to_json()
    assert report["bytes"] == 300
    assert [i["image"] for i in report["remove"]] == ["r/a:c1", "r/a:c0"]
    assert [i["image"] for i in report["keep"]] == ["r/a:c2"]


@pytest.mark.parametrize(("keep", "days"), [(0, 30), (-1, 0), (3, -1)])
def test_bad_policy(keep: int, days: float) -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(keep, days)
