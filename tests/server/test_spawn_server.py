"""``rlmesh.testing.spawn_server``: its servers never outlive the process that started them.

A test run or a benchmark stopped by a signal (even SIGKILL) never calls ``stop()``; its
``rlmesh serve`` children must notice on their own (their end of a pipe reads EOF), stop,
and remove their private directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlmesh.numpy import RemoteEnv
from rlmesh.testing import spawn_server
from tests.support.processes import alive, wait_dead, wait_for

pytestmark = pytest.mark.timeout(120)

PARENT = textwrap.dedent("""
    import sys, time
    from rlmesh.testing import spawn_server
    servers = [spawn_server("CartPole-v1") for _ in range(2)]
    for server in servers:
        print(server.pid, server._tmpdir, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_servers_stop_when_their_parent_is_killed(sig: signal.Signals) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE,
                              text=True)
    pids: list[int] = []
    try:
        assert parent.stdout is not None
        lines = [parent.stdout.readline().split() for _ in range(2)]
        pids, dirs = [int(pid) for pid, _ in lines], [Path(d) for _, d in lines]
        assert all(alive(pid) for pid in pids) and all(d.is_dir() for d in dirs)
        parent.send_signal(sig)
        parent.wait(10)
        assert wait_dead(pids, 30) == [], "a server outlived its parent"
        assert wait_for(lambda: not any(d.exists() for d in dirs), 10)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for pid in pids:  # (a failed run leaves no server behind either)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_stopped_server_closes_its_lifeline_and_serves_until_then() -> None:
    before = set(os.listdir("/proc/self/fd"))
    with spawn_server("CartPole-v1") as server:
        env = RemoteEnv(server.address)
        env.reset(seed=0)
        env.step(0)
        env.close()
        assert server.process.poll() is None
    assert server.process.returncode is not None
    assert set(os.listdir("/proc/self/fd")) <= before  # (no pipe end left open)
