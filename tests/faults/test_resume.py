"""Sessions survive a dropped connection: cut between requests and in the middle of a step.

A small TCP proxy sits between client and server and can sever every connection it carries
at a chosen moment. With ``ServeOptions(resume_window=...)`` the client reconnects through it,
resumes the same session, and its trajectory stays identical to a local env: no step is
lost and none is applied twice. Without resume the error is typed and immediate.
"""

from __future__ import annotations

import contextlib
import os
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
from rlmesh.numpy import RemoteEnv


class CuttingProxy:
    """Forwards loopback TCP connections to ``target``; :meth:`cut` severs all of them."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.connections = 0
        self.refuse = False
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._socks += [client, upstream]
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Sever every connection (both sides see the connection drop)."""
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop = True
        self.cut()
        self.listener.close()


class Counting(gym.Env[np.int64, np.int64]):
    """Observation = number of steps applied; ``action`` seconds of sleep per step / 10."""

    observation_space = spaces.Box(0, 10**6, (1,), np.int64)
    action_space = spaces.Discrete(10)

    def __init__(self) -> None:
        self.count = 0

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self.count = 0
        return np.array([0]), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        time.sleep(int(action) / 10)
        self.count += 1
        return np.array([self.count]), 1.0, False, False, {}


@pytest.fixture
def proxied(serve: Callable[..., Any],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., CuttingProxy]]:
    # Through a proxy both ends look local; keep every frame on the proxied socket.
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    proxies: list[CuttingProxy] = []

    def start(env: Any, **options: Any) -> CuttingProxy:
        server = serve(env, options=ServeOptions(**options))
        proxies.append(CuttingProxy(server.address))
        proxies[-1].server = server  # type: ignore[attr-defined]
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


def test_cut_between_requests_resumes_the_same_episode(proxied: Callable[..., Any]) -> None:
    proxy = proxied(lambda: gym.make("CartPole-v1"), resume_window=5)
    local = gym.make("CartPole-v1")
    rng = np.random.default_rng(1)
    with RemoteEnv(proxy.address, timeout=10) as env:
        assert env.contract["resume"]["window"] == 5
        obs, _ = env.reset(seed=3)
        np.testing.assert_array_equal(obs, local.reset(seed=3)[0])
        for t in range(60):
            if t in (5, 17, 40):
                proxy.cut()
            action = int(rng.integers(2))
            got, want = env.step(action), local.step(action)
            np.testing.assert_array_equal(got[0], want[0])
            assert got[1:4] == want[1:4]
            if got[2] or got[3]:
                obs, _ = env.reset(seed=t)
                np.testing.assert_array_equal(obs, local.reset(seed=t)[0])
    assert proxy.connections == 4
    assert proxy.server.stats["resumes"] == 3


@pytest.mark.parametrize("when", [0.05, 0.25], ids=["before-reply", "after-reply"])
def test_cut_during_a_step_applies_it_exactly_once(proxied: Callable[..., Any],
                                                   when: float) -> None:
    # The step sleeps 0.2 s: a cut at 0.05 s breaks the connection while the env steps (the
    # reply cannot be sent; the server keeps it), a cut at 0.25 s may race the reply.
    envs: list[Counting] = []

    def factory() -> Counting:
        envs.append(Counting())
        return envs[-1]

    proxy = proxied(factory, resume_window=5)
    with RemoteEnv(proxy.address, timeout=10) as env:
        env.reset()
        assert env.step(0)[0][0] == 1
        timer = threading.Timer(when, proxy.cut)
        timer.start()
        obs = env.step(2)[0]
        timer.join()
        assert obs[0] == 2  # the step's own reply, whether kept or sent in time
        assert env.step(0)[0][0] == 3  # and nothing was applied twice
    assert len(envs) == 1 and envs[0].count == 3


def test_without_resume_the_error_is_typed_and_immediate(proxied: Callable[..., Any]) -> None:
    proxy = proxied(lambda: gym.make("CartPole-v1"))
    with RemoteEnv(proxy.address, timeout=10) as env:
        assert "resume" not in env.contract
        env.reset(seed=0)
        proxy.cut()
        start = time.monotonic()
        with pytest.raises(rlmesh.ConnectionLostError):
            env.step(0)
        assert time.monotonic() - start < 1.0


def test_resume_fails_cleanly_after_the_window(proxied: Callable[..., Any]) -> None:
    proxy = proxied(lambda: gym.make("CartPole-v1"), resume_window=0.5)
    with RemoteEnv(proxy.address, timeout=10) as env:
        env.reset(seed=0)
        proxy.refuse = True  # reconnects are hung up on: the window runs out
        proxy.cut()
        start = time.monotonic()
        with pytest.raises(rlmesh.SessionLostError, match="resume"):
            env.step(0)
        assert 0.4 < time.monotonic() - start < 3.0
        assert proxy.server.stats["resumes"] == 0


def test_parked_session_is_released_after_the_window(serve: Callable[..., Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    instance = Counting()
    server = serve(instance, options=ServeOptions(resume_window=0.4, max_sessions=1))
    env = RemoteEnv(server.address, timeout=10)
    env.reset()
    key = env.contract["resume"]["key"]
    env._channel.abandon()  # drop the connection without a goodbye: the session parks
    with pytest.raises(rlmesh.EnvBusyError):
        RemoteEnv(server.address, timeout=10)  # the slot and the instance are still held
    deadline = time.monotonic() + 5
    while True:  # after the window both are free again
        try:
            with RemoteEnv(server.address, timeout=10) as again:
                again.reset()
            break
        except rlmesh.EnvBusyError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # The expired key resumes nothing: a typed error, not a hang.
    from rlmesh.client import handshake
    from rlmesh.transport.sockets import parse_address

    with pytest.raises(rlmesh.SessionLostError):
        handshake.open_connection(parse_address(server.address), connect_timeout=5,
                                  max_message_bytes=1 << 20, secret=None, tls=None, spin=0,
                                  extra={"resume": {"key": key}})


def test_a_stolen_key_without_the_token_resumes_nothing(serve: Callable[..., Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    server = serve(lambda: gym.make("CartPole-v1"), token="tok",
                   options=ServeOptions(resume_window=5))
    with RemoteEnv(server.address, token="tok", timeout=10) as env:
        env.reset(seed=0)
        key = env.contract["resume"]["key"]
        from rlmesh.client import handshake
        from rlmesh.transport.sockets import parse_address

        with pytest.raises(rlmesh.AuthenticationError):
            handshake.open_connection(parse_address(server.address), connect_timeout=5,
                                      max_message_bytes=1 << 20, secret=None, tls=None,
                                      spin=0, extra={"resume": {"key": key}})
        env.step(0)  # the real session is untouched


def test_resume_over_the_same_host_link(serve: Callable[..., Any]) -> None:
    # Default settings: the link is negotiated; cutting the socket breaks it too.
    envs: list[Counting] = []

    def factory() -> Counting:
        envs.append(Counting())
        return envs[-1]

    server = serve(factory, options=ServeOptions(resume_window=5))
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link"] is (os.uname().machine in ("x86_64", "amd64"))
        env.reset()
        for i in range(1, 6):
            env._channel._conn.abort()  # as if the network dropped it
            assert env.step(0)[0][0] == i
    assert envs[0].count == 5
