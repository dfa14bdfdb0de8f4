"""Frame limits before and after authentication, against a real server process (D2, D5).

Before a client has authenticated, a server accepts only frames of ``max_handshake_bytes``
(64 KiB): a prefix announcing more is answered with ``message_too_large`` before anything
is allocated. After it, headers are capped by ``max_header_bytes`` (1 MiB) on their own, and
a large body is received into a buffer that grows as its bytes arrive.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import msgpack
import pytest

from rlmesh.transport.stream import Connection
from tests.support.hostile import (
    PREFIX,
    ServerChild,
    close_all,
    connect,
    ended,
    frame,
    hello,
    pack,
    read_reply,
    start_server,
)

TOKEN = "preauth-secret"
MIB = 1024 * 1024


@pytest.fixture
def token_server() -> Iterator[ServerChild]:
    server = start_server({"idle_timeout": 30.0}, token=TOKEN)
    yield server
    server.stop()


@pytest.fixture
def open_server() -> Iterator[ServerChild]:
    server = start_server({"idle_timeout": 30.0})
    yield server
    server.stop()


def _reply_or_none(sock: socket.socket, timeout: float = 5.0) -> object:
    try:
        return read_reply(sock, timeout)
    except TimeoutError:
        return None


def _code(reply: object) -> object:
    if isinstance(reply, list) and len(reply) == 3 and isinstance(reply[2], dict):
        return reply[2].get("code")
    return reply


def test_big_frames_before_auth_are_refused_without_allocating(
        token_server: ServerChild) -> None:
    """Eight bytes announcing ~96 MiB (header or body) commit nothing before AUTH."""
    server = token_server
    before = server.stats()
    socks = []
    try:
        for _ in range(2):  # a huge header, announced by the prefix alone
            sock = connect(server.address)
            sock.sendall(PREFIX.pack(96 * MIB, 0))
            socks.append(sock)
        for _ in range(2):  # a small header and a huge body
            sock = connect(server.address)
            header = pack([0, 0, {"rlmesh": 1}])
            sock.sendall(PREFIX.pack(len(header), 96 * MIB) + header)
            socks.append(sock)
        codes = [_code(_reply_or_none(sock)) for sock in socks]
        assert codes == ["message_too_large"] * 4, codes
        assert all(ended(sock, 5.0) for sock in socks), "refused connections stay open"
        grown = server.stats()["peak"] - before["peak"]
        assert grown < 32, f"4 prefixes before AUTH raised the server's peak RSS by {grown:.0f} MiB"
    finally:
        close_all(socks)
    with connect(server.address) as sock:  # and the HELLO itself still passes
        sock.sendall(hello(nonce=b"0" * 16))
        assert _reply_or_none(sock)[0] == 0  # type: ignore[index]


def test_large_body_after_hello_grows_only_as_its_bytes_arrive(
        open_server: ServerChild) -> None:
    """A body of 128 MiB of which 2 MiB came does not make the server commit 128 MiB."""
    server = open_server
    sock = connect(server.address)
    try:
        sock.sendall(hello())
        assert _reply_or_none(sock)[0] == 0  # type: ignore[index]
        time.sleep(0.2)
        before = server.stats()
        header = pack([5, 1])
        sock.sendall(PREFIX.pack(len(header), 128 * MIB) + header + bytes(2 * MIB))
        time.sleep(1.0)
        grown = server.stats()["rss"] - before["rss"]
        assert grown < 24, f"2 MiB of a 128 MiB body raised the server's RSS by {grown:.0f} MiB"
    finally:
        sock.close()


def test_huge_header_after_hello_is_refused_at_its_prefix(open_server: ServerChild) -> None:
    """D5: a 32 MiB header of nils is refused unread (max_header_bytes), not decoded."""
    server = open_server
    before = server.stats()
    nils = 32 * MIB
    header = b"\xdd" + nils.to_bytes(4, "big") + b"\xc0" * nils
    sock = connect(server.address)
    try:
        sock.sendall(hello())
        assert _reply_or_none(sock)[0] == 0  # type: ignore[index]

        def send() -> None:
            with contextlib.suppress(OSError):  # the server closes the connection
                sock.sendall(frame(header))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        assert _code(_reply_or_none(sock, 10.0)) == "message_too_large"
        sender.join(10)
        grown = server.stats()["peak"] - before["peak"]
        assert grown < 16, f"the header raised the server's peak RSS by {grown:.0f} MiB"
    finally:
        sock.close()


def test_staging_buffer_stays_small_after_a_large_header() -> None:
    """A 2 MiB header is received beside the staging buffer, which stays at 64 KiB."""
    left, right = socket.socketpair()
    conn = Connection(left, 64 * MIB)
    try:
        big = pack([5, 1, b"x" * (2 * MIB)])
        small = pack([5, 2])

        def send() -> None:
            right.sendall(frame(big, b"body") + frame(small))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        header, body = conn.recv()
        assert bytes(header) == big and body == bytearray(b"body")
        header, body = conn.recv()
        assert msgpack.unpackb(bytes(header)) == [5, 2] and body is None
        sender.join(5)
        assert len(conn._buf) <= 64 * 1024, f"staging buffer kept at {len(conn._buf)} bytes"
    finally:
        conn.close()
        right.close()


def test_large_body_is_received_intact_across_its_growth() -> None:
    """The growing buffer delivers exactly the bytes sent (sizes around the doublings)."""
    left, right = socket.socketpair()
    conn = Connection(left, 64 * MIB)
    try:
        for size in (MIB - 1, MIB + 1, 5 * MIB + 123):
            payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
            header = pack([5, size])
            sender = threading.Thread(target=right.sendall, args=(frame(header, payload),),
                                      daemon=True)
            sender.start()
            got_header, body = conn.recv()
            sender.join(5)
            assert bytes(got_header) == header
            assert body is not None and len(body) == size and bytes(body) == payload
    finally:
        conn.close()
        right.close()
