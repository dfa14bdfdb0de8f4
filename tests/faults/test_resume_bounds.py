"""A call's timeout bounds its resumption too (attack review D9).

With a resume window, a client whose connection broke reconnects with the session key. That
used to go on for the whole window whatever the call's ``timeout`` (a ``step(timeout=1)``
blocked for the window, then raised ``SessionLostError``). Now reconnection stops when the
call's time runs out: ``RLMeshTimeoutError``, and the session stays parked on the server for
the next call to resume within the window.

The server runs in a child process; a proxy in this process cuts the connection and then
hangs up on every reconnection until the test lets them through.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh.numpy import RemoteEnv
from tests.faults.test_resume import CuttingProxy
from tests.support.processes import stop_child

SERVER = """
import os, sys
import rlmesh

ready, window = sys.argv[1], float(sys.argv[2])
server = rlmesh.EnvServer("CartPole-v1", "127.0.0.1:0",
                          options=rlmesh.ServeOptions(resume_window=window, drain_timeout=1))
with open(ready + ".part", "w") as handle:
    handle.write(server.address)
os.replace(ready + ".part", ready)
server.serve()
"""


@pytest.fixture
def resumable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Callable[[float], CuttingProxy]]:
    """``proxy = resumable(window)``: a child server with that resume window, behind a proxy."""
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")  # every frame on the proxied socket
    children: list[subprocess.Popen[bytes]] = []
    proxies: list[CuttingProxy] = []

    def start(window: float) -> CuttingProxy:
        ready = tmp_path / f"ready{len(children)}"
        child = subprocess.Popen([sys.executable, "-c", SERVER, str(ready), str(window)],
                                 stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        children.append(child)
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        proxies.append(CuttingProxy(ready.read_text()))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()
    for child in children:
        stop_child(child)


def _step_fails_within(env: RemoteEnv, error: type[Exception], timeout: float,
                       bound: float) -> None:
    start = time.monotonic()
    with pytest.raises(error):
        env.step(0, timeout=timeout)
    elapsed = time.monotonic() - start
    assert elapsed < bound, f"step(timeout={timeout}) took {elapsed:.1f}s"


def test_timeout_bounds_resumption_and_the_session_survives(
        resumable: Callable[[float], CuttingProxy]) -> None:
    proxy = resumable(20)
    local = gym.make("CartPole-v1")
    with RemoteEnv(proxy.address, timeout=10) as env:
        assert env.contract["resume"]["window"] == 20
        np.testing.assert_array_equal(env.reset(seed=3)[0], local.reset(seed=3)[0])
        proxy.refuse = True  # reconnections are hung up on
        proxy.cut()
        # Was: reconnecting for the whole 20 s window, then SessionLostError.
        _step_fails_within(env, rlmesh.RLMeshTimeoutError, 1.0, 4.0)
        _step_fails_within(env, rlmesh.RLMeshTimeoutError, 0.5, 3.0)  # still parked
        proxy.refuse = False
        # The next call resumes the same session: the same env, in the same episode (the
        # timed-out steps never reached it: the proxy had cut the connection).
        got, want = env.step(1), local.step(1)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:4] == want[1:4]
        for action in (0, 1, 1):  # and the channel is healthy again
            got, want = env.step(action), local.step(action)
            np.testing.assert_array_equal(got[0], want[0])
    assert proxy.connections >= 2


def test_window_still_ends_the_session_after_a_timed_out_resume(
        resumable: Callable[[float], CuttingProxy]) -> None:
    proxy = resumable(1.5)
    with RemoteEnv(proxy.address, timeout=10) as env:
        env.reset(seed=0)
        proxy.refuse = True
        proxy.cut()
        # Was: SessionLostError after the 1.5 s window, whatever the timeout.
        _step_fails_within(env, rlmesh.RLMeshTimeoutError, 0.3, 1.4)
        # A longer call runs into the window's end: the session is gone for good ...
        _step_fails_within(env, rlmesh.SessionLostError, 10.0, 5.0)
        proxy.refuse = False
        # ... and later calls say so at once, without reconnecting.
        start = time.monotonic()
        with pytest.raises(rlmesh.ConnectionLostError, match="unusable"):
            env.step(0)
        assert time.monotonic() - start < 1.0
