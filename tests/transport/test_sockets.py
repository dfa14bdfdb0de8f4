"""Socket tuning: a connection within this machine does not pace its sends.

BBR paces a sender at the bandwidth it has measured; on a loopback connection that measure
is arbitrary, and a large frame then leaves in timed pieces (a 224x224x3 step took 75 µs
instead of 31 on some connections). ``unpace_local`` switches such a connection to a
congestion control that does not pace, and leaves every other socket alone.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlmesh.transport.sockets import tune, unpace_local

pytestmark = pytest.mark.timeout(30)

_OPTION = getattr(socket, "TCP_CONGESTION", None)
_AVAILABLE = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")


def available() -> set[str]:
    """The congestion controls this kernel has (empty where it does not say)."""
    return set(_AVAILABLE.read_text().split()) if _AVAILABLE.exists() else set()


needs_bbr = pytest.mark.skipif(
    _OPTION is None or "bbr" not in available(),
    reason="the kernel has no BBR (or no TCP_CONGESTION option): nothing paces")


def congestion(sock: socket.socket) -> str:
    assert _OPTION is not None
    return sock.getsockopt(socket.IPPROTO_TCP, _OPTION, 16).split(b"\0", 1)[0].decode()


def set_congestion(sock: socket.socket, name: str) -> None:
    assert _OPTION is not None
    sock.setsockopt(socket.IPPROTO_TCP, _OPTION, name.encode())
    assert congestion(sock) == name


@contextlib.contextmanager
def connected_pair(family: int = socket.AF_INET,
                   host: str = "127.0.0.1") -> Iterator[tuple[socket.socket, socket.socket]]:
    """A TCP connection on loopback: ``(client, accepted)``."""
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        accepted, _ = listener.accept()
        with client, accepted:
            yield client, accepted


@needs_bbr
def test_a_loopback_connection_paced_by_bbr_switches_to_one_that_does_not_pace() -> None:
    with connected_pair() as (client, accepted):
        for sock in (client, accepted):
            set_congestion(sock, "bbr")
            chosen = unpace_local(sock)
            assert chosen in ("cubic", "reno")
            assert congestion(sock) == chosen
        client.sendall(b"x" * 100_000)  # (the connection still carries data)
        got = 0
        while got < 100_000:
            got += len(accepted.recv(65536))


@needs_bbr
def test_tune_unpaces_both_ends() -> None:
    with connected_pair() as (client, accepted):
        for sock in (client, accepted):
            set_congestion(sock, "bbr")
            tune(sock)
            assert not congestion(sock).startswith("bbr")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@needs_bbr
def test_an_ipv6_loopback_connection_is_local_too() -> None:
    with contextlib.ExitStack() as stack:
        try:
            client, _ = stack.enter_context(connected_pair(socket.AF_INET6, "::1"))
        except OSError as exc:  # no IPv6, or no ::1 configured
            pytest.skip(f"no IPv6 loopback here: {exc}")
        set_congestion(client, "bbr")
        assert unpace_local(client) in ("cubic", "reno")


@pytest.mark.skipif(_OPTION is None or "reno" not in available(),
                    reason="no TCP_CONGESTION option or no Reno")
def test_a_connection_that_does_not_pace_is_left_alone() -> None:
    with connected_pair() as (client, _):
        set_congestion(client, "reno")
        assert unpace_local(client) == ""
        assert congestion(client) == "reno"


def test_sockets_that_are_not_connected_tcp_are_left_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert unpace_local(left) == ""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as unconnected:
        assert unpace_local(unconnected) == ""  # (no peer: nothing raised)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("127.0.0.1", 9))  # (a UDP connect sends nothing)
        assert unpace_local(udp) == ""
