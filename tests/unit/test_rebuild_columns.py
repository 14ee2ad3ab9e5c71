"""A build database made before rebuilds existed gains the `rebuild` and `rebuild_of`
columns at start-up, and its old rows read as "not a rebuild"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fancy_env.builder.db import Store

OLD_SCHEMA = """
CREATE TABLE builds (
    id VARCHAR(32) PRIMARY KEY, user VARCHAR(255), repo VARCHAR(2048), ref VARCHAR(255),
    subdir VARCHAR(1024), "commit" VARCHAR(64), image VARCHAR(512), status VARCHAR(16),
    reason TEXT, cache_hit BOOLEAN, executor_ref VARCHAR(255), created FLOAT,
    started FLOAT, finished FLOAT
);
INSERT INTO builds VALUES ('ab', 'alice', 'https://x/r', '', '', 'c0ffee', 'p/r:c0ffee',
    'built', '', 0, '', 1.0, 1.0, 2.0);
"""


async def test_old_database_gains_rebuild_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    store = await Store.open(f"sqlite:///{path}")
    try:
        old = await store.get("ab")
        assert old is not None
        data = old.to_json()
        assert data["rebuild"] is False and data["rebuild_of"] == ""
        assert data["log_truncated"] is False
        assert await store.serving_build("p/r:c0ffee") == "ab"
        assert await store.last_rebuild("alice", "p/r:c0ffee") is None
    finally:
        await store.close()
    await (await Store.open(f"sqlite:///{path}")).close()  # a second start: columns present
