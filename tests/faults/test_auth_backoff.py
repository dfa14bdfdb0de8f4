"""Token guessing is slowed per peer and its warnings are aggregated (D15).

A real server process with a token: each wrong proof from one address waits longer before
its ``auth_failed`` reply (growing, bounded), while a client from another address is not
slowed; the server logs one line per interval with a count instead of one per attempt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from rlmesh.numpy import RemoteEnv
from tests.support.hostile import ServerChild, connect, frame, hello, pack, read_reply, start_server

TOKEN = "backoff-secret"


@pytest.fixture
def server() -> Iterator[ServerChild]:
    child = start_server(token=TOKEN)
    yield child
    child.stop()


def _wrong_proof(server: ServerChild, source: str) -> float:
    """Seconds from a wrong AUTH to its ``auth_failed`` reply."""
    with connect(server.address, source=source, timeout=10) as sock:
        sock.sendall(hello(nonce=os.urandom(16)))
        assert read_reply(sock)[0] == 0  # the challenge
        sock.sendall(frame(pack([6, 1, {"proof": os.urandom(32)}])))
        start = time.monotonic()
        reply = read_reply(sock, 10)
        took = time.monotonic() - start
    assert reply[2]["code"] == "auth_failed", reply
    return took


def test_wrong_proofs_from_one_peer_are_slowed_more_each_time(
        server: ServerChild, record_property: Callable[[str, object], None]) -> None:
    record_property("tries", 6)  # wrong proofs
    waits = [_wrong_proof(server, "127.0.0.5") for _ in range(6)]
    assert sum(waits) > 2.0, f"six wrong proofs were answered in {waits}"
    assert waits[-1] > 0.8 and waits[-1] > 4 * waits[0], f"no growing delay: {waits}"
    assert max(waits) < 2.5, f"the delay is not bounded: {waits}"
    start = time.monotonic()  # another address is not slowed
    with RemoteEnv(server.address, token=TOKEN, timeout=10) as env:
        env.reset(seed=0)
    assert time.monotonic() - start < 1.0


def test_wrong_proofs_are_logged_once_per_interval_with_a_count(server: ServerChild) -> None:
    for n in range(5):  # five addresses: no back-off beyond the first step
        _wrong_proof(server, f"127.0.0.{10 + n}")
    lines = [line for line in server.log().splitlines() if "wrong token" in line]
    assert len(lines) == 1, f"{len(lines)} log lines for 5 wrong proofs: {lines}"
