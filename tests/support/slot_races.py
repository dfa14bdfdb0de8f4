"""Races against the compiled client's slot step, run as a child process (a crash is its end).

``python -m tests.support.slot_races RACE SECONDS`` builds a client and a server link over one
region in this process and steps the compiled client against the Python server for about
SECONDS seconds, while something races the step:

* ``form``: a forked child (a hostile peer) flips the reply slot's form word between 0 and a
  form that was not agreed while the client reads the reply;
* ``release``: another thread releases the client's steps (as a link closed from another
  thread) while it copies a large observation out of the slot.

It prints ``survived N steps, M handed on`` and exits 0; a step that read freed memory, or the
peer's word twice, ends it with a signal instead.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import gymnasium as gym
import numpy as np

from rlmesh.transport import fastslots, shm, shmlink
from rlmesh.transport.stream import Connection
from rlmesh.wire.fixed import step_frames
from rlmesh.wire.slots import SlotSteps

PR_SET_PDEATHSIG = 1


def links(obs_items: int, rewards: bool) -> tuple[Any, ...]:
    """A client and a server link, and their slot layouts of a uint8 observation."""
    size = 1 << 16
    ours, theirs = socket.socketpair()
    region = shm.ShmRegion.create(size)
    assert region.fd is not None
    client = shmlink.ShmLink(Connection(ours, 1 << 20), region, "client")
    server = shmlink.ShmLink(Connection(theirs, 1 << 20),
                             shm.ShmRegion(os.dup(region.fd), size), "server")
    client.set_timeout(5)
    server.set_timeout(5)
    frames = step_frames(gym.spaces.Box(0, 255, (obs_items,), np.uint8),
                         gym.spaces.Discrete(3), None)
    assert frames is not None
    mine = SlotSteps(frames, *client.slot_views(), kind=shmlink.KIND_STEP, rewards=rewards)
    theirs_ = SlotSteps(frames, *server.slot_views(), kind=shmlink.KIND_STEP, rewards=rewards)
    server.enable_steps(theirs_.release)
    return client, server, mine, theirs_


def exchange(client: Any, server: Any, theirs: SlotSteps, fast: Any, rid: int,
             obs: np.ndarray[Any, Any], reward: Any) -> bool:
    """One step: the server's reply first, then the client's; whether C read the reply."""
    assert theirs.write_result(rid, obs, reward, False, False, {})
    server.send_written()
    got = fast.step(rid, 1)
    if got != fastslots.DECLINED:  # (released before it began: nothing was sent)
        server.recv()
    client._in_seq = server._out_seq  # (whoever read the reply, both counts stay in step)
    client._out_seq = server._in_seq
    return type(got) is list


def race_form(seconds: float) -> tuple[int, int]:
    client, server, mine, theirs = links(2, rewards=False)
    fast = fastslots.client_steps(client, mine)
    assert fast is not None
    word = np.frombuffer(client.slot_views()[1], np.uint32, 1, 4)
    pid = os.fork()
    if pid == 0:  # (the hostile peer: 0, then 1, which was not agreed)
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # (dies with this process)
        if os.getppid() == 1:
            os._exit(0)
        while True:
            word[0] = 0
            word[0] = 1
    obs, steps, handed = np.zeros(2, np.uint8), 0, 0
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            read = exchange(client, server, theirs, fast, steps, obs, 0.5)
            steps, handed = steps + 1, handed + (not read)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return steps, handed


def race_release(seconds: float) -> tuple[int, int]:
    client, server, mine, theirs = links(1024, rewards=True)  # (NumPy copies it without GIL)
    obs, steps, handed = np.zeros(1024, np.uint8), 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fast = fastslots.client_steps(client, mine)
        assert fast is not None
        go, done = threading.Event(), threading.Event()

        def closer(fast: Any = fast, go: threading.Event = go,
                   done: threading.Event = done) -> None:
            go.wait()
            while not done.is_set():
                fast.release()
                time.sleep(0)

        thread = threading.Thread(target=closer)
        thread.start()
        go.set()
        try:
            read = exchange(client, server, theirs, fast, steps, obs, np.float64(0.5))
        finally:
            done.set()
            thread.join()
        steps, handed = steps + 1, handed + (not read)
    return steps, handed


def main() -> int:
    race, seconds = sys.argv[1], float(sys.argv[2])
    faulthandler.enable()
    steps, handed = {"form": race_form, "release": race_release}[race](seconds)
    print(f"survived {steps} steps, {handed} handed on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
