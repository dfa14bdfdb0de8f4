"""A client that does not read its replies cannot stall the step deadline (attack review D11).

One watchdog thread per server answers every overdue env call with ``StepDeadlineError``. It
used to send that error itself, blocking: an attacker who filled its connection (pipelined
steps whose replies it never reads) and then stalled its env made the watchdog block in
``send`` until that env call returned, and nobody else got a deadline error meanwhile. Now
the watchdog never blocks: an error that does not fit is dropped and the connection cut.

The server is a child ``rlmesh serve`` on a unix socket, where the fill is exact: a first
connection measures how many replies the server sends before a send would block; a second
one queues exactly that many, then stalls its env.
"""

from __future__ import annotations

import array
import fcntl
import os
import socket
import termios
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rlmesh
from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.numpy import RemoteEnv

ENV_MODULE = textwrap.dedent('''
    import time
    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces

    class Sleepy(gym.Env):
        """step(a) sleeps a/10 s, touching MARKER + str(a) first; observations are 4 KiB."""

        metadata = {"render_modes": []}
        observation_space = spaces.Box(0, 255, (4096,), np.uint8)
        action_space = spaces.Discrete(100)

        def __init__(self, marker=""):
            self.marker = marker

        def reset(self, *, seed=None, options=None):
            return np.zeros(4096, np.uint8), {}

        def step(self, action):
            if action:
                open(self.marker + str(int(action)), "w").close()
                time.sleep(int(action) / 10)
            return np.zeros(4096, np.uint8), 0.0, False, False, {}
''')
ATTACKER_STALL = 50  # 5 s in its env
VICTIM_STALL = 20  # 2 s: past the 0.3 s deadline, well before the attacker's call returns


def _queued(sock: socket.socket) -> int:
    """Bytes waiting unread in ``sock``'s receive queue."""
    count = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
    return count[0]


def _wait_queued(sock: socket.socket, more_than: int, within: float) -> int:
    """The receive queue's length once it exceeds ``more_than`` (``more_than`` if it never does)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (now := _queued(sock)) > more_than:
            return now
        time.sleep(0.002)
    return more_than


def _attacker(address: str) -> tuple[Channel, socket.socket]:
    """A session on a plain socket, reset; the raw socket to watch its receive queue."""
    channel = Channel(address, same_host=False, timeout=10)
    channel.request(P.OP_RESET, None, None)
    sock = channel._conn.sock  # type: ignore[attr-defined]
    return channel, sock


def _replies_that_fit(address: str) -> tuple[int, int]:
    """Fill a connection until the server blocks sending a reply.

    Returns:
        How many replies went out (the next one blocked) and how many bytes they are.
    """
    channel, sock = _attacker(address)
    try:
        queued = 0
        for sent in range(1, 5000):
            channel.submit(P.OP_STEP, 0)
            now = _wait_queued(sock, queued, within=1.0)
            if now == queued:  # reply `sent` did not come: the server blocks sending it
                return sent - 1, queued
            queued = now
        raise AssertionError("the connection never filled up")
    finally:
        channel.abandon()


def test_a_full_connection_does_not_stall_the_watchdog(
        spawn: Callable[..., Any], tmp_path: Path, closing: Callable[[Any], Any]) -> None:
    (tmp_path / "sleepy.py").write_text(ENV_MODULE)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    marker = str(tmp_path / "stalled")
    server = spawn("sleepy:Sleepy", address=f"unix://{tmp_path}/env.sock",
                   kwargs={"marker": marker}, env={**os.environ, "PYTHONPATH": path},
                   extra_args=["--step-deadline", "0.3", "--drain-timeout", "1"])
    victim = closing(RemoteEnv(server.address, timeout=10))
    victim.reset()
    start = time.monotonic()
    with pytest.raises(rlmesh.StepDeadlineError):  # the deadline works to begin with
        victim.step(VICTIM_STALL)
    assert time.monotonic() - start < VICTIM_STALL / 10

    fit, size = _replies_that_fit(server.address)
    channel, sock = _attacker(server.address)
    try:
        for _ in range(fit):
            channel.submit(P.OP_STEP, 0)
        deadline = time.monotonic() + 10
        while _queued(sock) < size:  # every reply has come: the next send would block
            assert time.monotonic() < deadline, "the replies did not come"
            time.sleep(0.002)
        channel.submit(P.OP_STEP, ATTACKER_STALL)
        while not os.path.exists(marker + str(ATTACKER_STALL)):
            assert time.monotonic() < deadline, "the attacker's step did not start"
            time.sleep(0.01)
        time.sleep(0.6)  # past the attacker's deadline: the watchdog has dealt with it

        victim = closing(RemoteEnv(server.address, timeout=10))
        victim.reset()
        start = time.monotonic()
        # Was: no deadline error while the watchdog blocked on the attacker's connection:
        # the victim's stalled step ran its full 2 s and answered normally.
        with pytest.raises(rlmesh.StepDeadlineError):
            victim.step(VICTIM_STALL)
        assert time.monotonic() - start < VICTIM_STALL / 10
        # The attacker's connection was cut at its deadline (its env still sleeps).
        sock.settimeout(3.0)
        while sock.recv(1 << 16):
            pass
    finally:
        channel.abandon()
