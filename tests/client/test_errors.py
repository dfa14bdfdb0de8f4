"""Every failure surfaces as its typed rlmesh exception, quickly, and leaves the rest working."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh import EnvServer, ServeOptions, spaces
from rlmesh.envs import CounterEnv
from rlmesh.numpy import RemoteEnv
from rlmesh.transport.stream import PREFIX
from rlmesh.wire.decoder import Decoder
from tests.support.net import free_port
from tests.support.spaces import CustomSpace
from tests.support.values import encode

E = TypeVar("E", bound=Exception)


# -- helpers ----------------------------------------------------------------------------------


def connect(address: str, connect_timeout: float = 5, timeout: float = 5) -> RemoteEnv:
    """A numpy client with the timeouts these tests use unless they say otherwise."""
    return RemoteEnv(address, connect_timeout=connect_timeout, timeout=timeout)


def step_raises(env: RemoteEnv, action: Any, error: type[E]) -> E:
    """``env.step(action)`` raises exactly ``error`` (not a subclass of it); return that."""
    with pytest.raises(error) as info:
        env.step(action)
    assert type(info.value) is error, repr(info.value)
    return info.value


def frame(value: Any) -> bytes:
    """One complete rlmesh frame carrying ``value``."""
    header, body = encode(value)
    return PREFIX.pack(len(header), len(body)) + header + body


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def recv_frame(sock: socket.socket) -> Any:
    hlen, blen = PREFIX.unpack(recv_exact(sock, PREFIX.size))
    header = recv_exact(sock, hlen)
    body = recv_exact(sock, blen) if blen else None
    return Decoder().decode(header, bytearray(body) if body is not None else None)


def closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Read until EOF (or reset); False if the peer keeps the connection open."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def raw_connect(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=5)


HELLO = {"rlmesh": rlmesh.PROTOCOL_VERSION, "client": "raw-test", "capabilities": []}


def assert_serves(address: str) -> None:
    """A normal client can connect, reset and step."""
    with connect(address) as env:
        env.reset(seed=0)
        env.step(env.action_space.sample())
        assert env.ping("alive") == "alive"


class CountingEnv(gym.Env[np.int64, np.int64]):
    """Discrete(2) actions; counts every call the server makes."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(100)
        self.action_space = spaces.Discrete(2)
        self.reset_calls = 0
        self.step_calls = 0
        self.actions: list[Any] = []
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.reset_calls += 1
        self.t = 0
        return self.t, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.step_calls += 1
        self.actions.append(action)
        self.t += 1
        return self.t, 1.0, False, False, {}


def _explode_in_step(action: Any) -> None:
    raise RuntimeError(f"boom in step with action {action}")


def _explode_in_reset(seed: Any) -> None:
    raise ValueError(f"bad seed {seed}")


class FailingEnv(CountingEnv):
    """step(1) raises; reset(seed=13) raises; everything else works."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        if seed == 13:
            _explode_in_reset(seed)
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        if action == 1:
            _explode_in_step(action)
        return super().step(action)


# -- connecting ---------------------------------------------------------------------------


def test_connect_to_closed_port_retries_until_connect_timeout() -> None:
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(rlmesh.ConnectFailedError) as info:
        RemoteEnv(address, connect_timeout=0.5)
    assert 0.5 <= time.monotonic() - start < 2.0
    assert "kept trying for 0.5s" in str(info.value)
    assert type(info.value) is rlmesh.ConnectFailedError
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value, rlmesh.TransportError)
    assert address in str(info.value)


def test_connect_to_missing_unix_socket_fails_after_connect_timeout(tmp_path: Any) -> None:
    with pytest.raises(rlmesh.ConnectFailedError) as info:
        RemoteEnv(f"unix://{tmp_path}/nothing.sock", connect_timeout=0.3)
    assert isinstance(info.value, ConnectionError)


@pytest.mark.parametrize("kind", ["tcp", "unix", "vector"])
def test_a_server_that_is_still_starting_is_waited_for(kind: str, tmp_path: Any) -> None:
    """``serve &`` then connect: the client retries refused connections (with backoff)."""
    address = (f"unix://{tmp_path}/late.sock" if kind == "unix"
               else f"127.0.0.1:{free_port()}")
    make: Any = lambda: gym.make("CartPole-v1")  # noqa: E731
    if kind == "vector":
        make = lambda: gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)  # noqa: E731
    servers: list[rlmesh.EnvServer] = []

    def start_late() -> None:
        time.sleep(0.6)
        servers.append(rlmesh.EnvServer(make, address).start())

    starter = threading.Thread(target=start_late)
    started = time.monotonic()
    starter.start()
    try:
        if kind == "vector":
            with rlmesh.RemoteVectorEnv(address, connect_timeout=10) as venv:
                venv.reset(seed=0)
        else:
            with RemoteEnv(address, connect_timeout=10) as env:
                env.reset(seed=0)
        assert time.monotonic() - started >= 0.6
    finally:
        starter.join()
        for server in servers:
            server.shutdown()


def test_connect_timeout_bounds_a_connect_that_never_completes() -> None:
    # A listener that never accepts, with its accept queue full: further SYNs are dropped.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(listener.getsockname())
                fillers.append(filler)
            time.sleep(0.1)
            start = time.monotonic()
            with pytest.raises(rlmesh.ConnectFailedError) as info:
                RemoteEnv(f"127.0.0.1:{listener.getsockname()[1]}", connect_timeout=0.5)
            assert 0.4 <= time.monotonic() - start < 1.5
            assert isinstance(info.value, ConnectionError)
        finally:
            for filler in fillers:
                filler.close()


# -- busy instances and factories ---------------------------------------------------------


def test_second_client_of_an_instance_is_refused_at_once(serve: Callable[..., Any]) -> None:
    env = CountingEnv()
    server = serve(env)
    with connect(server.address) as first:
        first.reset(seed=0)
        start = time.monotonic()
        with pytest.raises(rlmesh.EnvBusyError) as info:
            connect(server.address)
        assert time.monotonic() - start < 2.0
        assert type(info.value) is rlmesh.EnvBusyError
        assert isinstance(info.value, rlmesh.RLMeshError)
        assert not isinstance(info.value, ConnectionError)
        # The holder is undisturbed.
        first.step(0)
        assert env.step_calls == 1
    with connect(server.address) as second:
        obs, _ = second.reset(seed=1)
        assert obs == 0
        second.step(1)
        assert env.step_calls == 2


def test_instance_is_free_as_soon_as_close_returns(serve: Callable[..., Any]) -> None:
    """close() returning means the server has released the env: no EnvBusyError race."""
    server = serve(CounterEnv())
    busy = 0
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # frequent thread switches widen any release-after-reply gap
    try:
        for _ in range(3000):
            try:
                env = connect(server.address)
            except rlmesh.EnvBusyError:
                busy += 1
                continue
            env.close()
    finally:
        sys.setswitchinterval(interval)
    assert busy == 0, f"{busy} of 3000 connections got EnvBusyError right after a close()"


def test_factory_serves_concurrent_clients_each_with_its_own_env(
        serve: Callable[..., Any]) -> None:
    made: list[CountingEnv] = []
    lock = threading.Lock()

    def factory() -> CountingEnv:
        env = CountingEnv()
        with lock:
            made.append(env)
        return env

    server = serve(factory)
    barrier = threading.Barrier(3)

    def drive(n_steps: int) -> int:
        with connect(server.address) as env:
            barrier.wait(timeout=5)  # all three sessions are open at the same time
            env.reset(seed=n_steps)
            obs = 0
            for _ in range(n_steps):
                obs, *_ = env.step(0)
            return int(obs)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(drive, [5, 7, 9]))
    assert results == [5, 7, 9]
    assert len(made) == 3
    assert sorted(e.step_calls for e in made) == [5, 7, 9]
    assert all(e.reset_calls == 1 for e in made)


# -- the env raises ------------------------------------------------------------------------


def test_env_step_raising_gives_remote_env_error_and_session_survives(
        serve: Callable[..., Any]) -> None:
    server = serve(FailingEnv)
    with connect(server.address) as env, connect(server.address) as other:
        env.reset(seed=0)
        other.reset(seed=0)
        other.step(0)
        exc = step_raises(env, 1, rlmesh.RemoteEnvError)
        assert isinstance(exc, rlmesh.RLMeshError)
        assert exc.remote_type == "RuntimeError"
        assert exc.remote_message == "boom in step with action 1"
        assert "_explode_in_step" in exc.remote_traceback
        assert "RuntimeError: boom in step with action 1" in exc.remote_traceback
        assert "_explode_in_step" in str(exc)
        # The same session goes on.
        obs, _ = env.reset(seed=1)
        assert obs == 0
        obs, reward, terminated, truncated, _ = env.step(0)
        assert (obs, reward, terminated, truncated) == (1, 1.0, False, False)
        # The other session never noticed.
        obs, *_ = other.step(0)
        assert obs == 2


def test_env_reset_raising_gives_remote_env_error(serve: Callable[..., Any]) -> None:
    server = serve(FailingEnv())
    with connect(server.address) as env:
        with pytest.raises(rlmesh.RemoteEnvError) as info:
            env.reset(seed=13)
        assert info.value.remote_type == "ValueError"
        assert info.value.remote_message == "bad seed 13"
        assert "_explode_in_reset" in info.value.remote_traceback
        # No reset has succeeded yet, so step still needs one.
        with pytest.raises(rlmesh.ResetNeededError):
            env.step(0)
        env.reset(seed=0)
        assert env.step(0)[0] == 1


class FourValueEnv(CountingEnv):
    def step(self, action: Any) -> Any:  # the pre-0.26 Gym API
        return 0, 1.0, False, {}


class ThreeValueEnv(CountingEnv):
    def step(self, action: Any) -> Any:  # no API at all
        return 0, 1.0, False


def test_old_gym_steps_are_read_and_other_shapes_name_the_gymnasium_api(
        serve: Callable[..., Any]) -> None:
    with connect(serve(FourValueEnv()).address) as env:  # (as the reference rlmesh reads it)
        env.reset(seed=0)
        assert env.step(0) == (0, 1.0, False, False, {})
    with connect(serve(ThreeValueEnv()).address) as env:
        env.reset(seed=0)
        exc = step_raises(env, 0, rlmesh.RemoteEnvError)
        assert "Gymnasium API" in exc.remote_message
        assert "step" in exc.remote_message
        env.reset(seed=0)  # still usable


# -- invalid requests ----------------------------------------------------------------------


@pytest.mark.parametrize("action", [2, -1, np.int64(7), "left", 0.5, None, [0],
                                    np.array([0, 1])],
                         ids=["2", "-1", "np7", "str", "float", "None", "list", "array"])
def test_invalid_action_never_reaches_the_env(serve: Callable[..., Any], action: Any) -> None:
    env_obj = CountingEnv()
    server = serve(env_obj)
    with connect(server.address) as env:
        env.reset(seed=0)
        assert isinstance(step_raises(env, action, rlmesh.InvalidActionError), ValueError)
        assert env_obj.step_calls == 0
        obs, *_ = env.step(1)
        assert obs == 1
        assert env_obj.step_calls == 1
        assert env_obj.actions == [1]


def test_invalid_box_action_never_reaches_the_env(serve: Callable[..., Any]) -> None:
    calls: list[Any] = []

    class BoxActionEnv(CountingEnv):
        def __init__(self) -> None:
            super().__init__()
            self.action_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)

        def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
            calls.append(action)
            return super().step(0)

    server = serve(BoxActionEnv())
    with connect(server.address) as env:
        env.reset(seed=0)
        for bad in (np.array([2.0, 0.0, 0.0], np.float32), np.zeros(4, np.float32),
                    np.array([np.nan, 0.0, 0.0], np.float32)):
            with pytest.raises(rlmesh.InvalidActionError):
                env.step(bad)
        assert calls == []
        env.step(np.array([0.5, -0.5, 1.0], np.float32))
        assert len(calls) == 1


def test_step_before_reset_needs_a_reset(serve: Callable[..., Any]) -> None:
    env_obj = CountingEnv()
    server = serve(env_obj)
    with connect(server.address) as env:
        assert isinstance(step_raises(env, 0, rlmesh.ResetNeededError), rlmesh.RLMeshError)
        assert env_obj.step_calls == 0
        env.reset(seed=0)
        assert env.step(0)[0] == 1


def test_calls_after_close_raise_env_closed(serve: Callable[..., Any]) -> None:
    server = serve(CountingEnv())
    env = connect(server.address)
    env.reset(seed=0)
    env.close()
    assert env.closed
    calls: list[Callable[[], Any]] = [lambda: env.step(0), lambda: env.reset(seed=0),
                                      env.render, env.ping]
    for call in calls:
        with pytest.raises(rlmesh.EnvClosedError) as info:
            call()
        assert type(info.value) is rlmesh.EnvClosedError
    env.close()  # idempotent
    env.close()
    assert env.closed


class SlowStep(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose steps take ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.delay = delay

    def step(self, action: Any) -> Any:
        time.sleep(self.delay)
        return self.env.step(action)


@pytest.mark.parametrize("in_flight", [False, True], ids=["idle", "call-in-flight"])
def test_abandon_from_another_thread_then_close_is_quiet(serve: Callable[..., Any],
                                                         in_flight: bool) -> None:
    server = serve(lambda: SlowStep(0.5))
    env = connect(server.address)
    env.reset(seed=0)
    failures: list[BaseException] = []

    def step() -> None:
        try:
            env.step(0)
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=step)
    if in_flight:
        worker.start()
        time.sleep(0.1)  # the step is on the server now
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (an unraisable OSError would show up as a warning)
        env.abandon()
        if in_flight:
            worker.join(5)
            assert not worker.is_alive()
            assert len(failures) == 1 and isinstance(failures[0], rlmesh.ConnectionLostError)
            assert time.monotonic() - started < 0.4, "the call was not cut short"
        env.close()  # quiet: no goodbye to send, nothing raised
        env.close()
    assert env.closed
    with pytest.raises(rlmesh.EnvClosedError):
        env.step(0)
    with connect(server.address) as again:  # the server goes on
        again.reset(seed=1)


# -- the server goes away or stalls --------------------------------------------------------


def test_killed_server_gives_connection_lost(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1")
    with connect(server.address, connect_timeout=10) as env:
        env.reset(seed=0)
        env.step(0)
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait(5)
        start = time.monotonic()
        with pytest.raises(rlmesh.TransportError) as info:
            env.step(1)
        assert time.monotonic() - start < 5.0
        assert type(info.value) is rlmesh.ConnectionLostError
        assert isinstance(info.value, ConnectionError)
        # The channel stays unusable, and says so at once.
        with pytest.raises(rlmesh.ConnectionLostError):
            env.reset(seed=0)
    assert env.closed


def test_close_after_server_was_killed_is_quiet(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1")
    env = connect(server.address, connect_timeout=10)
    env.reset(seed=0)
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(5)
    start = time.monotonic()
    env.close()  # best-effort goodbye: must not raise
    assert time.monotonic() - start < 2.0
    assert env.closed
    with pytest.raises(rlmesh.EnvClosedError):
        env.step(0)


class StallEnv(CountingEnv):
    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.release.wait(10)
        return super().step(action)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let stalled server threads finish before the server shuts down


def test_stalled_step_times_out(serve: Callable[..., Any], release: threading.Event) -> None:
    server = serve(StallEnv(release))
    env = connect(server.address, timeout=0.5)
    try:
        env.reset(seed=0)
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshTimeoutError) as info:
            env.step(0)
        elapsed = time.monotonic() - start
        assert 0.4 <= elapsed < 1.5
        assert type(info.value) is rlmesh.RLMeshTimeoutError
        assert isinstance(info.value, TimeoutError)
        # A late reply could be taken for the next one: the channel refuses further use.
        start = time.monotonic()
        with pytest.raises(rlmesh.ConnectionLostError):
            env.step(0)
        assert time.monotonic() - start < 0.5
    finally:
        start = time.monotonic()
        env.close()
        assert time.monotonic() - start < 1.5


# -- protocol violations ------------------------------------------------------------------


def test_wrong_protocol_version_is_refused_and_server_keeps_serving(
        serve: Callable[..., Any]) -> None:
    server = serve(CountingEnv)
    with connect(server.address) as bystander:
        bystander.reset(seed=0)
        with raw_connect(server.address) as sock:
            sock.sendall(frame([0, 0, {"rlmesh": 999, "client": "future", "capabilities": []}]))
            reply = recv_frame(sock)
            assert reply[0] == 1
            assert reply[1] == 0
            error = reply[2]
            assert error["code"] == "version_mismatch"
            assert error["fatal"] is True
            assert "999" in error["message"]
            assert closed_by_peer(sock)
        bystander.step(0)
        assert_serves(server.address)


@contextlib.contextmanager
def fake_server(send: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server that answers the first read with ``send`` and then lingers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    done = threading.Event()

    def run() -> None:
        listener.settimeout(10)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                send(conn)
            except OSError:
                pass
            done.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        listener.close()
        thread.join(5)


GARBAGE: dict[str, Callable[[socket.socket], None]] = {
    "http-response": lambda c: c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
    "ssh-banner-then-close": lambda c: (c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n"), c.close()),
    "bad-msgpack-frame": lambda c: c.sendall(PREFIX.pack(4, 0) + b"\xc1\xc1\xc1\xc1"),
    "reply-not-an-array": lambda c: c.sendall(frame(42)),
    "contract-not-a-map": lambda c: c.sendall(frame([0, 0, "hello"])),
    "contract-without-spaces": lambda c: c.sendall(frame([0, 0, {"kind": "env"}])),
    "contract-with-bogus-space": lambda c: c.sendall(
        frame([0, 0, {"kind": "env", "observation_space": {"type": "Nope"},
                      "action_space": {"type": "Discrete"}}])),
    "truncated-frame": lambda c: c.sendall(PREFIX.pack(100, 0) + b"\x93\x00"),
    "close-without-reply": lambda c: c.close(),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_non_rlmesh_server_gives_protocol_or_connection_error(name: str) -> None:
    with fake_server(GARBAGE[name]) as address:
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshError) as info:
            RemoteEnv(address, connect_timeout=1, timeout=1)
        assert time.monotonic() - start < 2.0
        assert isinstance(info.value, (rlmesh.ProtocolError, rlmesh.ConnectionLostError,
                                       rlmesh.RLMeshTimeoutError)), repr(info.value)
        if isinstance(info.value, rlmesh.RLMeshTimeoutError):
            assert name == "truncated-frame", "only an incomplete frame may end in a timeout"


def test_silent_server_times_out_the_handshake() -> None:
    with fake_server(lambda c: None) as address:
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshTimeoutError) as info:
            RemoteEnv(address, connect_timeout=0.5, timeout=5)
        assert 0.4 <= time.monotonic() - start < 1.5
        assert isinstance(info.value, TimeoutError)


def test_server_error_map_for_version_mismatch_raises_typed_error() -> None:
    error = {"code": "version_mismatch", "message": "server speaks 7", "type": None,
             "traceback": None, "fatal": True}
    with fake_server(lambda c: c.sendall(frame([1, 0, error]))) as address:
        with pytest.raises(rlmesh.VersionMismatchError) as info:
            RemoteEnv(address, connect_timeout=1, timeout=1)
        assert isinstance(info.value, rlmesh.ProtocolError)
        assert isinstance(info.value, ValueError)
        assert "server speaks 7" in str(info.value)


_RNG = random.Random(20240601)
RAW_REQUESTS: dict[str, tuple[bytes, str | None]] = {
    # name: (bytes the client sends, error code expected in the reply or None if unknown)
    "oversized-prefix": (PREFIX.pack(0xFFFFFFFF, 0xFFFFFFFF), "message_too_large"),
    "just-over-limit": (PREFIX.pack(1000, 25), "message_too_large"),
    "random-header": (PREFIX.pack(32, 0) + _RNG.randbytes(32), "protocol_error"),
    "not-hello-first": (frame([5, 0, "ping"]), "protocol_error"),
    "hello-not-a-map": (frame([0, 0, [1]]), "protocol_error"),
    "not-an-array": (frame({"op": 0}), "protocol_error"),
    "http-get": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
    "random-bytes": (_RNG.randbytes(4096), None),
}


@pytest.mark.parametrize("name", list(RAW_REQUESTS))
def test_garbage_from_a_client_closes_only_that_connection(serve: Callable[..., Any],
                                                          name: str) -> None:
    payload, code = RAW_REQUESTS[name]
    server = serve(CountingEnv, options=ServeOptions(max_message_bytes=1024))
    with connect(server.address) as bystander:
        bystander.reset(seed=0)
        with raw_connect(server.address) as sock:
            sock.sendall(payload)
            if code is not None:
                reply = recv_frame(sock)
                assert reply[0] == 1
                assert reply[2]["code"] == code
                assert reply[2]["fatal"] is True
            assert closed_by_peer(sock), "the server kept a garbage connection open"
        bystander.step(0)
        assert_serves(server.address)


def test_garbage_mid_session_closes_that_session(serve: Callable[..., Any]) -> None:
    server = serve(CountingEnv)
    with raw_connect(server.address) as sock:
        sock.sendall(frame([0, 0, HELLO]))
        contract = recv_frame(sock)
        assert contract[0] == 0
        assert contract[2]["kind"] == "env"
        sock.sendall(frame([99, 1]))  # unknown op
        reply = recv_frame(sock)
        assert reply[:2] == [1, 1]
        assert reply[2]["code"] == "protocol_error"
        assert closed_by_peer(sock)
    assert_serves(server.address)


# -- unencodable values ---------------------------------------------------------------------


class UnencodableObsEnv(CountingEnv):
    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        super().step(action)
        obs = object() if action == 1 else self.t
        return obs, 1.0, False, False, {}


def test_unencodable_observation_is_an_encode_error(serve: Callable[..., Any]) -> None:
    server = serve(UnencodableObsEnv())
    with connect(server.address) as env:
        env.reset(seed=0)
        assert isinstance(step_raises(env, 1, rlmesh.EncodeError), TypeError)
        obs, *_ = env.step(0)  # the session goes on
        assert obs == 2


class _OpaqueInfoValue:
    def __repr__(self) -> str:
        return "<opaque 42>"


class OddInfoEnv(CountingEnv):
    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, _ = super().step(action)
        info = {"set": {3}, "opaque": _OpaqueInfoValue(), "ok": np.arange(3),
                "nested": {"deep": [_OpaqueInfoValue()]}, "objects": np.array([None], object)}
        return obs, reward, terminated, truncated, info


def test_unencodable_info_values_become_reprs(serve: Callable[..., Any]) -> None:
    server = serve(OddInfoEnv())
    with connect(server.address) as env:
        env.reset(seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            obs, reward, terminated, truncated, info = env.step(0)
        assert (obs, reward, terminated, truncated) == (1, 1.0, False, False)
        assert info["set"] == "{3}"
        assert info["opaque"] == "<opaque 42>"
        assert info["nested"] == {"deep": ["<opaque 42>"]}
        assert info["objects"].dtype == object and info["objects"].tolist() == [None]
        assert info["ok"].dtype == np.arange(3).dtype
        assert info["ok"].tolist() == [0, 1, 2]
        assert any(issubclass(w.category, rlmesh.RLMeshWarning)
                   and "_OpaqueInfoValue" in str(w.message) for w in caught)
        env.step(0)  # and again


# -- what cannot be served ----------------------------------------------------------------


def test_vector_env_is_served_as_a_vector_endpoint() -> None:
    vec = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    with EnvServer(vec, "127.0.0.1:0") as server:
        server.start()
        assert server.source.contract["kind"] == "vector_env"
        assert server.source.contract["num_envs"] == 2
        with pytest.raises(rlmesh.EndpointKindError, match="RemoteVectorEnv"):
            RemoteEnv(server.address, connect_timeout=5, timeout=5)


class _ClosingVectorEnv(gym.vector.SyncVectorEnv):
    closes = 0

    def close_extras(self, **kwargs: Any) -> None:
        type(self).closes += 1
        super().close_extras(**kwargs)


def test_unused_vector_env_from_a_factory_is_closed_at_shutdown() -> None:
    _ClosingVectorEnv.closes = 0
    server = EnvServer(lambda: _ClosingVectorEnv([lambda: gym.make("CartPole-v1")] * 2),
                       "127.0.0.1:0")
    server.shutdown()
    assert _ClosingVectorEnv.closes == 1, "the factory's first vector env leaked"


class WeirdSpaceEnv(CountingEnv):
    closes = 0

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = CustomSpace()

    def close(self) -> None:
        type(self).closes += 1


def test_unsupported_space_is_refused_at_construction() -> None:
    with pytest.raises(rlmesh.UnsupportedSpaceError) as info:
        EnvServer(WeirdSpaceEnv(), "127.0.0.1:0")
    assert isinstance(info.value, TypeError)
    WeirdSpaceEnv.closes = 0
    with pytest.raises(rlmesh.UnsupportedSpaceError):
        EnvServer(WeirdSpaceEnv, "127.0.0.1:0")
    assert WeirdSpaceEnv.closes == 1  # the factory's prototype is not leaked


class NoSpaces:
    def reset(self, seed: Any = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        return 0, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        return 0, 0.0, False, False, {}


@pytest.mark.parametrize("target", [object(), NoSpaces(), 42, None],
                         ids=["object", "no-spaces", "int", "None"])
def test_non_env_is_refused_with_type_error(target: Any) -> None:
    with pytest.raises(TypeError) as info:
        EnvServer(target, "127.0.0.1:0")
    assert "observation_space" in str(info.value)


def test_factory_returning_a_non_env_is_refused_with_type_error() -> None:
    with pytest.raises(TypeError) as info:
        EnvServer(lambda: NoSpaces(), "127.0.0.1:0")
    assert "NoSpaces" in str(info.value)
