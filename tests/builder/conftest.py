from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.builder import BuilderProcess
from tests.support.db import both_databases

#: every test here runs on SQLite and on PostgreSQL (tests/support/db.py)
db_backend = both_databases(autouse=True)


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[BuilderProcess]:
    """The build service with the fake executor, as a real subprocess."""
    svc = BuilderProcess(tmp_path / "builder", executor="fake")
    svc.start()
    yield svc
    svc.stop()
