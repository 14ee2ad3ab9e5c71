"""A PostgreSQL server that takes the TCP connection and then never answers (a host dropping
packets, a hung server) fails a connection after `dbengine.CONNECT_TIMEOUT` instead of
holding a request, a retried write or a stop for good; a URL naming its own
`connect_timeout` keeps it.

The silent server is a listener this test starts on 127.0.0.1 that never accepts and never
writes a byte. The real PostgreSQL of `scripts/setup.sh --test` shows that a working
server still connects with the timeout set.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from fancy_env import dbengine
from tests.support import db


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listener that never accepts: the kernel completes the TCP handshake (the backlog),
    so the client connects and sends its start-up message, and no byte ever comes back."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        yield listener.getsockname()[1]


async def first_query(url: str) -> None:
    engine = dbengine.make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("query", ["", "?connect_timeout=1"])
def test_a_silent_server_fails_the_connection_in_time(
    silent_server: int, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not query:  # the default, shortened here so the test stays quick
        monkeypatch.setattr(dbengine, "CONNECT_TIMEOUT", 1)
    else:  # the URL's own value wins over a default that would make the test wait 60 s
        monkeypatch.setattr(dbengine, "CONNECT_TIMEOUT", 60)
    url = f"postgresql://fancy:secret@127.0.0.1:{silent_server}/fancy{query}"
    started = time.monotonic()
    with pytest.raises(OperationalError, match="timeout"):
        asyncio.run(first_query(url))
    assert time.monotonic() - started < 10


def test_a_working_server_connects_with_the_timeout_set() -> None:
    url = db.pg_admin_url()
    if url is None:
        pytest.fail("no PostgreSQL test cluster: run scripts/setup.sh --test")
    asyncio.run(first_query(url))
