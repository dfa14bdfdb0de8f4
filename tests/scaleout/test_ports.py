"""Fleet servers bind outside Ray's worker ports, or inside a port range they are given."""

from __future__ import annotations

import socket

import pytest

from rlmesh.scaleout.ports import bind_outside
from tests.support.net import free_port

pytestmark = pytest.mark.timeout(30)


def bind(port: int) -> socket.socket:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def test_a_kernel_port_outside_the_avoided_range_is_kept() -> None:
    sock = bind_outside(bind, port_of, socket.socket.close, avoid=(1, 1023))
    with sock:
        assert port_of(sock) > 1023


def test_ports_inside_the_avoided_range_are_released_and_the_search_gives_up() -> None:
    released: list[int] = []

    def release(sock: socket.socket) -> None:
        released.append(port_of(sock))
        sock.close()

    with pytest.raises(OSError, match="no free port outside"):
        bind_outside(bind, port_of, release, avoid=(1, 65535))
    assert len(released) > 1 and len(set(released)) > 1  # each bound, then let go


def test_a_port_range_is_honoured_and_a_taken_port_skipped() -> None:
    wanted = free_port()
    with bind_outside(bind, port_of, socket.socket.close, port_range=(wanted, wanted)) as sock:
        assert port_of(sock) == wanted
        with pytest.raises(OSError, match=f"no free port in \\({wanted}, {wanted}\\)"):
            bind_outside(bind, port_of, socket.socket.close, port_range=(wanted, wanted))
    with pytest.raises(ValueError, match="port_range"):
        bind_outside(bind, port_of, socket.socket.close, port_range=(0, 10))
