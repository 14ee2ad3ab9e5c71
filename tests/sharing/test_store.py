"""LinkStore on SQLite and PostgreSQL: round trips, lookups by hash, listing, updates."""

from __future__ import annotations

import pytest

from fancy_env.sharing import links as L
from fancy_env.sharing.store import LinkStore, spec_from_json, spec_to_json

NOW = 1_800_000_000.0
SPECS = [
    L.LinkSpec("small"),
    L.LinkSpec("small", {"image": "py311", "image--unlisted-choice": "x"}, note="n"),
    L.LinkSpec("repo", repo="https://h/r.git", ref="main", commit="a" * 40, build_id="b1"),
    L.LinkSpec("repo", repo="https://h/r.git", ref="dev", follow_branch=True, subdir="env"),
    L.LinkSpec("small", autostart=True),
]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_json_round_trip(spec: L.LinkSpec) -> None:
    assert spec_from_json(spec_to_json(spec)) == spec


async def test_store(db_url: str) -> None:
    store = await LinkStore.open(db_url)
    codes = {}
    for i, (owner, spec) in enumerate(zip(["alice", "alice", "bob", "alice", "bob"], SPECS,
                                          strict=True)):  # fmt: skip
        code = L.new_code()
        link = L.Link(L.new_link_id(), L.hash_code(code), owner, spec, NOW + i, NOW + 100)
        await store.add(link)
        codes[link.id] = code
    found = {lid: await store.by_code_hash(L.hash_code(code)) for lid, code in codes.items()}
    assert all(link is not None and link.id == lid for lid, link in found.items())
    assert await store.by_code_hash(L.hash_code("unknown-code-unknown-code")) is None
    assert [x.created for x in await store.list("alice")] == [NOW + 3, NOW + 1, NOW]  # newest
    assert [x.created for x in await store.list("alice", limit=1, offset=1)] == [NOW + 1]
    assert len(await store.list()) == 5 and await store.list("carol") == []
    assert sorted(await store.created_since("alice", NOW + 0.5)) == [NOW + 1, NOW + 3]
    first = next(iter(codes))
    updated = await store.update(first, revoked_at=NOW + 50)
    assert updated is not None and L.link_state(updated, NOW + 60) == "revoked"
    assert await store.update("0" * 16, revoked_at=NOW) is None
    with pytest.raises(ValueError, match="only"):
        await store.update(first, owner="mallory")
    await store.record_launch(first, NOW + 70)
    await store.record_launch(first, NOW + 80)
    assert await store.launches(first) == 2
    listed = {link.id: link.launches for link in await store.list()}  # one query, counts in it
    assert listed[first] == 2 and sum(listed.values()) == 2
    # a second store on the same database (the service restarted) sees everything
    again = await LinkStore.open(db_url)
    assert await again.by_id(first) == await store.by_id(first)
    await again.close()
    await store.close()
