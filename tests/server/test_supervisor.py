"""The worker supervisor's hang probe: a listener whose accept queue does not drain."""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest

from rlmesh.server.supervisor import Supervisor, accept_queue, stopped
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs TCP_INFO (Linux)"),
    pytest.mark.timeout(20),
]




class _Listening:
    """A stand-in worker: a real listener that never accepts, and a process that never exits."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.control, self._peer = socket.socketpair()
        self.pid = os.getpid()
        self.retired = False
        self.returncode: int | None = None

    def exited(self) -> bool:
        return False

    def retire(self) -> None:
        self.retired = True
        self.listener.shutdown(socket.SHUT_RDWR)
        for sock in (self.listener, self.control, self._peer):
            sock.close()


def test_a_worker_that_stops_accepting_is_replaced_after_hang_timeout() -> None:
    hung = _Listening()
    clients = [socket.create_connection(hung.listener.getsockname()) for _ in range(2)]
    assert accept_queue(hung.listener) == 2
    replacements: list[object] = []
    supervisor = Supervisor([hung], lambda index: _Listening(),
                            lambda index, worker: replacements.append(worker),
                            interval=0.05, hang_timeout=0.5)
    try:
        started = time.monotonic()
        assert wait_for(lambda: hung.retired, within=5)
        assert 0.5 <= time.monotonic() - started < 3
        assert wait_for(lambda: len(replacements) == 2, within=5)
        assert replacements[0] is None and isinstance(replacements[1], _Listening)
    finally:
        supervisor.stop()
        for sock in clients:
            sock.close()
        for worker in replacements:
            if isinstance(worker, _Listening) and not worker.retired:
                worker.retire()


def test_a_draining_queue_is_not_a_hang() -> None:
    busy = _Listening()
    supervisor = Supervisor([busy], lambda index: _Listening(), lambda index, worker: None,
                            interval=0.05, hang_timeout=0.5)
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # one connection waits at a time, then accepted
            client = socket.create_connection(busy.listener.getsockname())
            time.sleep(0.1)
            busy.listener.accept()[0].close()
            client.close()
        assert not busy.retired
    finally:
        supervisor.stop()
        busy.retire()


def test_probes_of_this_process() -> None:
    assert not stopped(os.getpid())
    assert accept_queue(None) == 0
