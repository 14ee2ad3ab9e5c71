"""The in-process ref lookup's small defects, through the service API: a malformed ref
advertisement is a 400 naming `repo` (not a 500), and a huge one is cut off at the cap while
it arrives (the service falls back to `git ls-remote`) instead of being buffered whole."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fancy_env.builder.git import MAX_REFS_BYTES, parse_pkt_lines
from fancy_env.repos import RepoError
from tests.support.builder import BuilderProcess

SHA = "a" * 40
GOOD = f"{SHA} refs/heads/main\n".encode()


def pkt(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


@pytest.mark.parametrize(
    "body",
    [
        b"zzzz",  # not hex
        b"+0a0" + b"x" * 200,  # int() would take a sign
        b" 0a0" + b"x" * 200,  # ... or a space
        b"0003",  # 1-3 is no valid length
        b"00ff" + GOOD,  # runs past the end
        pkt(GOOD) + b"00",  # a cut-off prefix
    ],
)
def test_malformed_pkt_lines_are_a_repo_error(body: bytes) -> None:
    with pytest.raises(RepoError) as info:
        parse_pkt_lines(body)
    assert info.value.field == "repo" and "malformed" in info.value.reason


def test_well_formed_pkt_lines() -> None:
    assert parse_pkt_lines(pkt(b"# service=git-upload-pack\n") + b"0000" + pkt(GOOD) + b"0000") == (
        {"refs/heads/main": SHA},
        "",
    )


class OneShotServer:
    """Answers the first info/refs request with `body` (advertised `length`) and every later
    request with 404; counts the bytes it managed to send."""

    def __init__(self, head: bytes, length: int, chunk: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.head, self.length, self.chunk = head, length, chunk
        self.sent = 0
        self.requests = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.requests += 1
                if self.requests > 1:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-"
                    b"advertisement\r\nContent-Length: %d\r\n\r\n" % self.length + self.head
                )
                self.sent = len(self.head)
                try:
                    while self.sent < self.length:
                        conn.sendall(self.chunk)
                        self.sent += len(self.chunk)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[BuilderProcess]:
    svc = BuilderProcess(tmp_path / "svc", executor="fake").start()
    yield svc
    svc.stop()


def test_malformed_advertisement_is_a_400_naming_repo(service: BuilderProcess) -> None:
    server = OneShotServer(b"zzzz-not-a-git-server", len(b"zzzz-not-a-git-server"))
    try:
        r = service.post("alice", f"http://127.0.0.1:{server.port}/x.git", "main")
    finally:
        server.close()
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "repo" and "malformed" in r.json()["message"]


def test_huge_advertisement_is_cut_off_at_the_cap(service: BuilderProcess) -> None:
    total = 8 * MAX_REFS_BYTES
    server = OneShotServer(pkt(GOOD), total, b"x" * (1 << 16))
    try:
        r = service.post("alice", f"http://127.0.0.1:{server.port}/x.git", "main")
    finally:
        server.close()
    assert r.status_code == 400, r.text  # then `git ls-remote` got the 404
    assert r.json()["field"] == "repo"
    assert server.sent < 2 * MAX_REFS_BYTES, f"read {server.sent} bytes of {total}"
    assert server.requests == 2
