"""The accept loop at the process limits, with many descriptors, and when it fails (D4, D10).

Real server processes: at the descriptor limit the loop backs off instead of spinning, at
the thread limit it closes the connection it cannot serve and goes on (as root: the server
runs as an unused user id under ``RLIMIT_NPROC``), and a server whose descriptors are all
above 1,023 accepts like any other. An unexpected failure of the loop stops the server
loudly instead of leaving it "running" without accepting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import rlmesh
from rlmesh.numpy import RemoteEnv
from tests.support.hostile import close_all, connect, start_server

NOBODY = "54321"  # an unused user id: RLIMIT_NPROC counts this server's threads alone
RUN_AS = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
          # (reads the interpreter wherever it lives, e.g. under a private /root)
          "--inh-caps=+dac_override", "--ambient-caps=+dac_override"]
ONE_THREAD_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _served(address: str, timeout: float = 10.0) -> None:
    with RemoteEnv(address, connect_timeout=timeout, timeout=timeout) as env:
        env.reset(seed=0)
        env.step(0)


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_descriptor_limit_backs_off_instead_of_spinning() -> None:
    server = start_server({"handshake_timeout": 60.0, "max_pending": 1000,
                           "max_pending_per_peer": 1000},
                          prefix=["prlimit", "--nofile=48:48"], extra_env=ONE_THREAD_BLAS)
    socks: list[socket.socket] = []
    try:
        for _ in range(60):  # more than the server has descriptors for
            socks.append(connect(server.address))
        time.sleep(1.0)
        before = server.stats()
        time.sleep(2.0)
        cpu = server.stats()["cpu"] - before["cpu"]
        assert before["fds"] >= 47, f"the server never reached its limit ({before['fds']} fds)"
        assert cpu < 0.5, f"the server used {cpu:.2f}s of CPU in 2s at its descriptor limit"
        assert server.log().count("pausing accepts") == 1, server.log()[-2000:]
        close_all(socks)
        socks = []
        _served(server.address)  # serving again once descriptors are free
        assert server.process.poll() is None
    finally:
        close_all(socks)
        server.stop()


def _can_run_as_nobody() -> str | None:
    """Why the thread-limit test cannot run here (``None``: it can)."""
    if os.geteuid() != 0:
        return "needs root (runs the server as another user under RLIMIT_NPROC)"
    if shutil.which("prlimit") is None or shutil.which("setpriv") is None:
        return "needs prlimit and setpriv (util-linux)"
    probe = subprocess.run([*RUN_AS, sys.executable, "-c", "import rlmesh"],
                           capture_output=True, cwd="/", timeout=60, check=False)
    if probe.returncode:
        return f"setpriv cannot run Python as uid {NOBODY}: {probe.stderr[-300:]!r}"
    return None


@pytest.mark.timeout(90)
def test_thread_limit_refuses_one_connection_and_keeps_serving() -> None:
    why = _can_run_as_nobody()
    if why is not None:
        pytest.skip(why)
    limit = 24
    server = start_server({"handshake_timeout": 60.0, "max_pending": 1000,
                           "max_pending_per_peer": 1000},
                          prefix=["prlimit", f"--nproc={limit}:{limit}", *RUN_AS],
                          extra_env=ONE_THREAD_BLAS)
    steps = [0]
    errors: list[str] = []
    stop = threading.Event()

    def witness() -> None:
        try:
            with RemoteEnv(server.address, timeout=10) as env:
                env.reset(seed=0)
                while not stop.is_set():
                    _, _, done, cut, _ = env.step(0)
                    steps[0] += 1
                    if done or cut:
                        env.reset()
        except Exception as exc:
            errors.append(repr(exc))

    stepping = threading.Thread(target=witness, daemon=True)
    stepping.start()
    socks: list[socket.socket] = []
    try:
        time.sleep(1.0)
        for _ in range(limit + 10):  # more connections than the server has threads for
            socks.append(connect(server.address))
            time.sleep(0.01)
        time.sleep(1.5)
        assert server.process.poll() is None, f"the server died:\n{server.log()[-2000:]}"
        before = steps[0]
        time.sleep(0.5)
        assert steps[0] > before and not errors, f"the witness stopped: {errors}"
        assert server.log().count("pausing accepts") >= 1
        close_all(socks)
        socks = []
        _served(server.address)
    finally:
        stop.set()
        stepping.join(10)
        close_all(socks)
        server.stop()


def test_server_with_descriptors_above_1023_accepts() -> None:
    server = start_server(hold_fds=1100)
    try:
        assert server.stats()["fds"] > 1100
        _served(server.address, timeout=5.0)
    finally:
        server.stop()


class _FailingListener:
    """A listener whose accept() fails in a way the loop does not expect."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def fileno(self) -> int:
        return int(self.real.fileno())

    def accept(self) -> Any:
        raise ValueError("an unexpected failure")

    def close(self) -> None:
        self.real.close()


def test_unexpected_accept_loop_failure_stops_the_server_loudly(
        caplog: pytest.LogCaptureFixture) -> None:
    server = rlmesh.EnvServer("CartPole-v1", "127.0.0.1:0")
    server._listener = _FailingListener(server._listener)  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="rlmesh.server"):
        server.start()
        try:
            with contextlib.ExitStack() as stack:
                # (the failing accept stops the server, whose closing listener may reset this
                # connection before connect() has returned on a busy machine)
                with contextlib.suppress(ConnectionError):
                    stack.enter_context(connect(server.address))
                assert server.wait(5), f"the server still claims to run: {server!r}"
        finally:
            server.shutdown()
    assert "stopped" in repr(server)
    assert any("accept loop failed" in r.getMessage() for r in caplog.records)
