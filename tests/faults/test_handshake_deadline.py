"""Handshakes are bounded in time, and connections not yet authenticated in number (D3).

A real server process: clients that stay silent, trickle their HELLO one byte at a time,
never answer the challenge, or stop after TLS are all closed once ``handshake_timeout`` has
passed; beyond ``max_pending`` (in total) or ``max_pending_per_peer`` (per address), the
oldest pending connection is closed, and a legitimate client still gets in.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rlmesh.numpy import RemoteEnv
from tests.support.hostile import (
    ServerChild,
    close_all,
    connect,
    ended,
    hello,
    read_reply,
    start_server,
)

TOKEN = "deadline-secret"
TIMEOUT = 1.5


@pytest.fixture
def server() -> Iterator[ServerChild]:
    child = start_server({"handshake_timeout": TIMEOUT, "max_pending": 500,
                          "max_pending_per_peer": 500}, token=TOKEN)
    yield child
    child.stop()


def _wait_threads(server: ServerChild, at_most: int, within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        threads = int(server.stats()["threads"])
        if threads <= at_most or time.monotonic() > deadline:
            return threads
        time.sleep(0.05)


def test_silent_trickling_and_unanswering_handshakes_end_at_the_deadline(
        server: ServerChild, record_property: Callable[[str, object], None]) -> None:
    record_property("tries", 18)  # connections (for benchmarks/faults.py)
    before = server.stats()
    silent = [connect(server.address) for _ in range(6)]
    trickling = [connect(server.address) for _ in range(6)]
    unanswering = []
    for _ in range(6):
        sock = connect(server.address)
        sock.sendall(hello(nonce=os.urandom(16)))
        assert read_reply(sock)[0] == 0  # the challenge; never answered
        unanswering.append(sock)
    payload = hello(nonce=os.urandom(16))
    cut: set[int] = set()
    start = time.monotonic()
    try:
        # One byte every 0.5 s: the HELLO would take half a minute to arrive.
        for i in range(int((TIMEOUT + 2.5) / 0.5)):
            for n, sock in enumerate(trickling):
                if n not in cut:
                    try:
                        sock.sendall(payload[i : i + 1])
                    except OSError:
                        cut.add(n)
            time.sleep(0.5)
        trickled = [n in cut or ended(sock, 0.5) for n, sock in enumerate(trickling)]
        assert all(trickled), f"trickling handshakes still open: {trickled}"
        quiet = [ended(sock, 0.5) for sock in silent + unanswering]
        assert all(quiet), f"silent or unanswering handshakes still open: {quiet}"
        assert time.monotonic() - start < TIMEOUT + 6
        threads = _wait_threads(server, int(before["threads"]), 3.0)
        assert threads <= before["threads"], f"threads {before['threads']} -> {threads}"
    finally:
        close_all(silent + trickling + unanswering)
    with RemoteEnv(server.address, token=TOKEN, timeout=10) as env:  # still serving
        env.reset(seed=0)


def test_tls_handshakes_are_inside_the_deadline(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    child = start_server({"handshake_timeout": TIMEOUT}, address="tls://127.0.0.1:0",
                         token=TOKEN, tls_cert=str(pem))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    socks: list[socket.socket] = []
    try:
        socks.append(connect(child.address))  # never starts TLS
        raw = connect(child.address)
        socks.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))  # TLS, then silence
        state = [ended(sock, TIMEOUT + 3) for sock in socks]
        assert state == [True, True], f"TLS handshakes still open: {state}"
    finally:
        close_all(socks)
        child.stop()


def test_pending_connections_are_capped_oldest_first_in_total_and_per_peer(
        record_property: Callable[[str, object], None]) -> None:
    record_property("tries", 11)  # connections
    child = start_server({"handshake_timeout": 60.0, "max_pending": 6,
                          "max_pending_per_peer": 3}, token=TOKEN)
    before = child.stats()
    by_peer: dict[str, list[socket.socket]] = {}
    try:
        for peer, count in (("127.0.0.2", 5), ("127.0.0.3", 3), ("127.0.0.4", 3)):
            by_peer[peer] = []
            for _ in range(count):
                by_peer[peer].append(connect(child.address, source=peer))
                time.sleep(0.05)  # (accepted in this order)
        time.sleep(0.5)
        first = by_peer["127.0.0.2"]
        closed = [ended(sock, 0.3) for sock in first]
        # per peer: the 4th and 5th closed the 1st and 2nd; in total: the other peers'
        # six closed the remaining three of the first peer
        assert closed == [True] * 5, f"first peer's connections closed: {closed}"
        others = [ended(sock, 0.1) for sock in by_peer["127.0.0.3"] + by_peer["127.0.0.4"]]
        assert others == [False] * 6, f"younger connections closed: {others}"
        assert child.stats()["threads"] <= before["threads"] + 6 + 1
        with RemoteEnv(child.address, token=TOKEN, timeout=10) as env:  # gets in all the same
            env.reset(seed=0)
            env.step(0)
    finally:
        close_all([sock for socks in by_peer.values() for sock in socks])
        child.stop()
