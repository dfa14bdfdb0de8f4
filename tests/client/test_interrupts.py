"""A call interrupted mid-exchange (Ctrl-C) leaves the client in a known state.

A signal handler that raises (as SIGINT's raises ``KeyboardInterrupt``) may stop a step after
its request went out and before its reply, or part of it, came in. The connection is then
closed: the next call raises ``ConnectionLostError`` at once (it never reads a stale or
half-read reply, nor waits for one), or, with a resume window, resumes the session and steps
on. Real in-process servers over loopback TCP, every client step path: the compiled and the
Python fixed frames over sockets, the compiled and the Python slot steps over the link.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlmesh
from rlmesh import ServeOptions
from rlmesh import protocol as P
from rlmesh.client import handshake as client_handshake
from rlmesh.client.channel import Channel
from rlmesh.numpy import RemoteEnv
from rlmesh.transport import fastframes, fastslots, shmlink

# (pytest-timeout's default method is SIGALRM, which these tests take over for a moment)
pytestmark = pytest.mark.timeout(60, method="thread")


class Interrupted(BaseException):
    """What this module's SIGALRM handler raises: like ``KeyboardInterrupt``, no Exception."""


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted


class Counting(gym.Env[np.ndarray, np.int64]):
    """Observation: how many steps were applied; each step sleeps ``action`` tenths of a second."""

    observation_space = spaces.Box(0, 10**6, (4,), np.float64)
    action_space = spaces.Discrete(10)

    def __init__(self) -> None:
        self.count = 0

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.count = 0
        return np.zeros(4), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        time.sleep(int(action) / 10)
        self.count += 1
        return np.full(4, float(self.count)), 1.0, False, False, {}


PATHS = ["frames-compiled", "frames-python", "link-compiled", "link-python"]


@pytest.fixture(params=PATHS)
def step_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The client's step path these tests take (its server is a thread of this process)."""
    path: str = request.param
    if path.startswith("link"):
        if not shmlink.supported():
            pytest.skip("the link needs an x86-64 machine")
        if path == "link-python":
            monkeypatch.setattr(client_handshake, "client_steps", lambda link, slots: None)
    else:
        monkeypatch.setenv("RLMESH_SAME_HOST", "0")
        if path == "frames-python":
            monkeypatch.setattr(fastframes, "client_frames", lambda *args: None)
    yield path


def interrupted(call: Callable[[], Any], after: float = 0.15) -> None:
    """``call()`` with a SIGALRM handler raising :class:`Interrupted` ``after`` seconds in."""
    before = signal.signal(signal.SIGALRM, _interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, after)
        started = time.monotonic()
        with pytest.raises(Interrupted):
            call()
        assert time.monotonic() - started < 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def interrupted_step(env: RemoteEnv, action: int, after: float = 0.15) -> None:
    """Step ``env``, interrupted ``after`` seconds in (see :func:`interrupted`)."""
    interrupted(lambda: env.step(action), after)


def connect(address: str) -> RemoteEnv:
    return RemoteEnv(address, connect_timeout=5, timeout=5)


def test_a_step_interrupted_mid_reply_closes_the_connection(
        serve: Callable[..., rlmesh.EnvServer], step_path: str) -> None:
    server = serve(Counting)
    with connect(server.address) as env:
        env.reset(seed=0)
        assert env.step(0)[0][0] == 1
        interrupted_step(env, 6)  # (the server sleeps 0.6 s: the reply is still to come)
        started = time.monotonic()
        with pytest.raises(rlmesh.ConnectionLostError, match=r"interrupted .*Interrupted"):
            env.step(0)
        with pytest.raises(rlmesh.ConnectionLostError, match="unusable"):
            env.step(0)
        assert time.monotonic() - started < 1  # (at once: no wait for the stale reply)
    with connect(server.address) as env:  # (the server serves the next session)
        env.reset(seed=0)
        assert env.step(0)[0][0] == 1


def test_with_a_resume_window_the_next_step_resumes_the_session(
        serve: Callable[..., rlmesh.EnvServer], step_path: str) -> None:
    # (with a resume window every step takes the general path: Channel.request)
    server = serve(Counting, options=ServeOptions(resume_window=5))
    with connect(server.address) as env:
        env.reset(seed=0)
        for count in (1, 2):
            assert env.step(0)[0][0] == count
        interrupted_step(env, 4)
        obs, reward, terminated, truncated, _ = env.step(0)
        # (the interrupted step was applied once, on the server, and its reply dropped)
        np.testing.assert_array_equal(obs, np.full(4, 4.0))
        assert (reward, terminated, truncated) == (1.0, False, False)
        for count in (5, 6, 7):
            assert env.step(0)[0][0] == count


def test_an_interrupted_reset_closes_the_connection_too(
        serve: Callable[..., rlmesh.EnvServer]) -> None:
    class SlowReset(Counting):
        def reset(self, *, seed: int | None = None,
                  options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
            time.sleep(0.6)
            return super().reset(seed=seed, options=options)

    server = serve(SlowReset)
    with connect(server.address) as env:
        before = signal.signal(signal.SIGALRM, _interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.15)
            with pytest.raises(Interrupted):
                env.reset(seed=0)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)
        with pytest.raises(rlmesh.ConnectionLostError, match=r"RESET .*interrupted"):
            env.reset(seed=0)


class StallingProxy:
    """Forwards one loopback TCP connection; once :meth:`stall` is called, the server's bytes
    stop after ``budget`` more of them (the rest is held back)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.budget: int | None = None
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self, budget: int) -> None:
        self.budget = budget

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.target)
            self.socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False),
                             daemon=True).start()
            self._pump(upstream, client, True)

    def _pump(self, src: socket.socket, dst: socket.socket, limited: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if limited and self.budget is not None:
                    data, self.budget = data[: self.budget], max(self.budget - len(data), 0)
                dst.sendall(data)

    def close(self) -> None:
        self.listener.close()
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()


class Frames(Counting):
    """:class:`Counting` with a 64x64x3 image: its reply's body is 12 KiB."""

    observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        return np.zeros((64, 64, 3), np.uint8), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        reply = super().step(action)
        return np.full((64, 64, 3), self.count, np.uint8), *reply[1:]


@pytest.mark.parametrize("path", ["frames-compiled", "frames-python"])
def test_a_step_interrupted_mid_body_closes_the_connection(
        serve: Callable[..., rlmesh.EnvServer], monkeypatch: pytest.MonkeyPatch,
        path: str) -> None:
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    if path == "frames-python":
        monkeypatch.setattr(fastframes, "client_frames", lambda *args: None)
    proxy = StallingProxy(serve(Frames).address)
    try:
        with connect(proxy.address) as env:
            env.reset(seed=0)
            assert env.step(0)[0][0, 0, 0] == 1
            proxy.stall(2000)  # (the reply's header and the start of its image)
            interrupted_step(env, 0, after=0.3)
            started = time.monotonic()
            with pytest.raises(rlmesh.ConnectionLostError, match="interrupted"):
                env.step(0)
            assert time.monotonic() - started < 1
    finally:
        proxy.close()


def test_an_action_that_cannot_be_sent_leaves_the_connection_working(
        serve: Callable[..., rlmesh.EnvServer], step_path: str) -> None:
    server = serve(Counting)
    with connect(server.address) as env:
        env.reset(seed=0)
        with pytest.raises(rlmesh.EncodeError):  # (refused here: nothing was sent)
            env.step(object())
        assert env.step(0)[0][0] == 1  # (the next step is the session's first)


def test_an_interruption_between_the_calls_of_a_slot_step_closes_the_connection(
        serve: Callable[..., rlmesh.EnvServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal handled after the compiled step announced the request, before the Python
    path waits for its reply (between two calls: no I/O call's own handler sees it)."""
    if not shmlink.supported() or fastslots.why_not() is not None:
        pytest.skip("needs the link and the compiled slot steps")
    server = serve(Counting)
    with connect(server.address) as env:
        env.reset(seed=0)
        slot_step = Channel._slot_step

        def signalled(self: Channel, rid: int, fast: int = fastslots.DECLINED) -> list[Any]:
            if fast != fastslots.DECLINED:  # (announced by the compiled step)
                raise Interrupted
            return slot_step(self, rid, fast)

        monkeypatch.setattr(Channel, "_slot_step", signalled)
        with pytest.raises(Interrupted):
            env.step(4)  # (the compiled step hands a step this slow on: it sleeps 0.4 s)
        monkeypatch.setattr(Channel, "_slot_step", slot_step)
        with pytest.raises(rlmesh.ConnectionLostError, match="interrupted"):
            env.step(0)  # (never the interrupted step's reply, read as this one's)


def test_an_interruption_between_send_and_receive_closes_the_connection(
        serve: Callable[..., rlmesh.EnvServer], monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(Counting)
    with connect(server.address) as env:
        env.reset(seed=0)
        recv_locked = Channel._recv_locked

        def signalled(self: Channel, op: int, rid: int, limit: float | None) -> list[Any]:
            raise Interrupted  # (the request went out; its reply is still to come)

        monkeypatch.setattr(Channel, "_recv_locked", signalled)
        with pytest.raises(Interrupted):
            env.reset(seed=1)
        monkeypatch.setattr(Channel, "_recv_locked", recv_locked)
        with pytest.raises(rlmesh.ConnectionLostError, match=r"RESET .*interrupted"):
            env.reset(seed=1)


@pytest.mark.parametrize("same_host", ["0", "1"])
def test_after_an_interrupted_collect_the_next_collect_raises_connection_lost(
        serve: Callable[..., rlmesh.EnvServer], monkeypatch: pytest.MonkeyPatch,
        same_host: str) -> None:
    monkeypatch.setenv("RLMESH_SAME_HOST", same_host)
    server = serve(Counting)
    channel = Channel(server.address, timeout=5)
    try:
        channel.request(P.OP_RESET, None, None)
        channel.submit(P.OP_STEP, 6)
        if same_host == "1":  # (the link's one slot: the second submit reads the first reply)
            interrupted(lambda: channel.submit(P.OP_STEP, 0))
        else:
            channel.submit(P.OP_STEP, 0)
            interrupted(channel.collect)
        with pytest.raises(rlmesh.ConnectionLostError, match="interrupted"):
            channel.collect()  # (not a read of the closed connection or region)
    finally:
        channel.close()


@pytest.mark.parametrize("same_host", ["0", "1"])
def test_with_a_resume_window_an_interrupted_collect_resumes_on_the_next_call(
        serve: Callable[..., rlmesh.EnvServer], monkeypatch: pytest.MonkeyPatch,
        same_host: str) -> None:
    monkeypatch.setenv("RLMESH_SAME_HOST", same_host)
    server = serve(Counting, options=ServeOptions(resume_window=5))
    channel = Channel(server.address, timeout=5)
    try:
        channel.request(P.OP_RESET, None, None)
        channel.submit(P.OP_STEP, 4)  # (as a vector env's step_async, then step_wait)
        interrupted(channel.collect)
        reply = channel.request(P.OP_STEP, 0)
        np.testing.assert_array_equal(reply[2], np.full(4, 2.0))  # (both steps, each once)
    finally:
        channel.close()


def test_an_interrupted_collect_of_a_submitted_slot_step_closes_the_connection(
        serve: Callable[..., rlmesh.EnvServer], step_path: str) -> None:
    if not step_path.startswith("link"):
        pytest.skip("slot steps are the link's")
    server = serve(Counting)
    channel = Channel(server.address, timeout=5)
    try:
        channel.request(P.OP_RESET, None, None)
        rid = channel.submit(P.OP_STEP, 6)
        assert channel._posted == rid  # (written in place, as a fleet's step_async)
        interrupted(channel.collect)
        with pytest.raises(rlmesh.ConnectionLostError, match=r"STEP .*interrupted"):
            channel.request(P.OP_STEP, 0)
    finally:
        channel.close()
