"""EnvServer lifecycle: addresses, start/wait/shutdown, env closing, signals, the CLI's ping."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh import EnvServer, spaces
from rlmesh.envs import CounterEnv, DictObsEnv
from rlmesh.numpy import RemoteEnv
from rlmesh.transport.stream import PREFIX
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from tests.support.net import free_port
from tests.support.processes import wait_for

# -- helpers ----------------------------------------------------------------------------------




def connect(address: str) -> RemoteEnv:
    """Connect, tolerating the known gap between a CLOSE reply and the instance's release.

    That gap is a bug covered by test_errors.py::test_instance_is_free_as_soon_as_close_returns;
    the tests here are about other things and must not fail on it.
    """
    deadline = time.monotonic() + 2.0
    while True:
        try:
            return RemoteEnv(address, connect_timeout=5, timeout=5)
        except rlmesh.EnvBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def drive(address: str, steps: int = 3) -> Any:
    env = connect(address)
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(steps):
            obs, *_ = env.step(env.action_space.sample())
        return obs
    finally:
        env.close()


class ClosingEnv:
    """A plain env object that counts ``close`` calls."""

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(10)
        self.action_space = spaces.Discrete(2)
        self.closes = 0
        self.t = 0

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        self.t = 0
        return 0, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self.t % 10, 1.0, False, False, {}

    def close(self) -> None:
        self.closes += 1


@pytest.fixture
def short_tmp() -> Iterator[str]:
    """A short directory for unix sockets (their paths are limited to ~100 bytes)."""
    path = tempfile.mkdtemp(prefix="rlm-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- addresses ------------------------------------------------------------------------------


ADDRESS_FORMS: dict[str, Callable[[str], dict[str, Any]]] = {
    "host:port": lambda tmp: {"address": "127.0.0.1:0"},
    "tcp://host:port": lambda tmp: {"address": "tcp://127.0.0.1:0"},
    "unix:///path": lambda tmp: {"address": f"unix://{tmp}/a.sock"},
    "host=,port=": lambda tmp: {"host": "127.0.0.1", "port": 0},
    "port= only": lambda tmp: {"port": 0},
    "path=": lambda tmp: {"path": f"{tmp}/b.sock"},
}


@pytest.mark.parametrize("form", list(ADDRESS_FORMS))
def test_address_forms(form: str, short_tmp: str) -> None:
    kwargs = ADDRESS_FORMS[form](short_tmp)
    server = EnvServer(CounterEnv, **kwargs)  # a factory: one env per client session
    try:
        server.start()
        address = server.address
        if "unix" in form or "path" in form:
            expected = kwargs.get("address") or f"unix://{kwargs['path']}"
            assert address == expected
            assert os.path.exists(address[len("unix://"):])
        else:
            match = re.fullmatch(r"127\.0\.0\.1:(\d+)", address)
            assert match, address
            assert int(match.group(1)) > 0  # port 0 resolved to the real port
        assert drive(address) == 3
        if address.startswith("127.0.0.1:"):
            assert drive("tcp://" + address) == 3  # the client takes tcp:// too
    finally:
        server.shutdown()
    if address.startswith("unix://"):
        assert not os.path.exists(address[len("unix://"):]), "socket file left behind"


@pytest.mark.parametrize("kwargs", [
    {"address": "127.0.0.1:0", "host": "127.0.0.1"},
    {"address": "127.0.0.1:0", "port": 0},
    {"path": "/tmp/x.sock", "host": "127.0.0.1"},
    {"address": "http://127.0.0.1:0"},
    {"address": "127.0.0.1"},
    {"address": "127.0.0.1:70000"},
], ids=["address+host", "address+port", "path+host", "bad-scheme", "no-port", "port-range"])
def test_bad_address_arguments_raise_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EnvServer(CounterEnv(), **kwargs)


def test_port_in_use_raises_and_closes_the_env() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = ClosingEnv()
        with pytest.raises(OSError):
            EnvServer(env, f"127.0.0.1:{taken.getsockname()[1]}")
        assert env.closes == 1


# -- start / wait / shutdown ----------------------------------------------------------------


def test_wait_is_false_while_running_and_true_after_shutdown() -> None:
    server = EnvServer(CounterEnv(), "127.0.0.1:0")
    try:
        assert server.start() is server
        start = time.monotonic()
        assert server.wait(0.3) is False
        assert time.monotonic() - start >= 0.25
        assert drive(server.address) == 3
        waiter: list[bool] = []
        thread = threading.Thread(target=lambda: waiter.append(server.wait(10)))
        thread.start()
        time.sleep(0.1)
        assert thread.is_alive()
        server.shutdown()
        thread.join(5)
        assert waiter == [True]
        assert server.wait(0) is True
        assert server.wait() is True
    finally:
        server.shutdown()


def test_start_twice_or_after_shutdown_is_an_error() -> None:
    server = EnvServer(CounterEnv(), "127.0.0.1:0")
    server.start()
    with pytest.raises(RuntimeError):
        server.start()
    server.shutdown()
    with pytest.raises(RuntimeError):
        server.start()
    with pytest.raises(RuntimeError):
        server.serve()


def test_shutdown_is_idempotent_and_closes_the_instance_exactly_once() -> None:
    env = ClosingEnv()
    server = EnvServer(env, "127.0.0.1:0").start()
    address = server.address
    try:
        for _ in range(3):  # successive sessions share the instance and never close it
            assert drive(address) == 3
        time.sleep(0.1)
        assert env.closes == 0
    finally:
        server.shutdown()
    assert env.closes == 1
    server.shutdown()
    server.shutdown()
    assert env.closes == 1
    with pytest.raises(rlmesh.ConnectFailedError):
        RemoteEnv(address, connect_timeout=1)


def test_shutdown_with_a_connected_client_closes_its_session() -> None:
    env = ClosingEnv()
    server = EnvServer(env, "127.0.0.1:0").start()
    client = RemoteEnv(server.address, connect_timeout=5, timeout=5)
    try:
        client.reset(seed=0)
        start = time.monotonic()
        server.shutdown()
        assert time.monotonic() - start < 3.0
        assert env.closes == 1
        with pytest.raises(rlmesh.ConnectionLostError) as info:
            client.step(0)
        assert isinstance(info.value, ConnectionError)
    finally:
        client.close()
    assert env.closes == 1


def test_factory_envs_are_closed_when_their_session_ends() -> None:
    made: list[ClosingEnv] = []

    def factory() -> ClosingEnv:
        made.append(ClosingEnv())
        return made[-1]

    server = EnvServer(factory, "127.0.0.1:0").start()
    try:
        assert len(made) == 1  # the prototype, built to describe the contract
        a = RemoteEnv(server.address, connect_timeout=5, timeout=5)
        b = RemoteEnv(server.address, connect_timeout=5, timeout=5)
        assert len(made) == 2  # the first session got the prototype
        a.reset(seed=0)
        b.reset(seed=0)
        a.close()
        assert wait_for(lambda: made[0].closes == 1)
        assert made[1].closes == 0
        b.step(1)
        b.close()
        assert wait_for(lambda: made[1].closes == 1)
        # A client that vanishes without CLOSE is treated as CLOSE.
        with socket.create_connection(("127.0.0.1", int(server.address.rsplit(":", 1)[1])),
                                      timeout=5) as sock:
            header, _, _ = Encoder().encode([0, 0, {"rlmesh": 1, "client": "raw",
                                                    "capabilities": []}])
            sock.sendall(PREFIX.pack(len(header), 0) + header)
            hlen, blen = PREFIX.unpack(sock.recv(8, socket.MSG_WAITALL))
            reply = Decoder().decode(sock.recv(hlen, socket.MSG_WAITALL), None)
            assert reply[0] == 0 and blen == 0
            assert len(made) == 3
        assert wait_for(lambda: made[2].closes == 1)
    finally:
        server.shutdown()
    assert [e.closes for e in made] == [1, 1, 1]


def test_unused_factory_prototype_is_closed_at_shutdown() -> None:
    made: list[ClosingEnv] = []
    server = EnvServer(lambda: made.append(ClosingEnv()) or made[-1], "127.0.0.1:0")
    server.start()
    server.shutdown()
    assert [e.closes for e in made] == [1]


def test_factory_session_open_at_shutdown_is_closed() -> None:
    made: list[ClosingEnv] = []
    server = EnvServer(lambda: made.append(ClosingEnv()) or made[-1], "127.0.0.1:0").start()
    clients = [RemoteEnv(server.address, connect_timeout=5, timeout=5) for _ in range(2)]
    try:
        for client in clients:
            client.reset(seed=0)
        server.shutdown()
        assert [e.closes for e in made] == [1, 1]
        for client in clients:
            with pytest.raises(rlmesh.ConnectionLostError):
                client.step(0)
    finally:
        for client in clients:
            client.close()


def test_client_close_after_server_shutdown_is_quiet() -> None:
    server = EnvServer(CounterEnv(), "127.0.0.1:0").start()
    client = RemoteEnv(server.address, connect_timeout=5, timeout=5)
    client.reset(seed=0)
    server.shutdown()
    start = time.monotonic()
    client.close()  # the goodbye cannot be delivered; close must still succeed
    assert time.monotonic() - start < 2.0
    assert client.closed


def test_context_manager_shuts_down() -> None:
    env = ClosingEnv()
    with EnvServer(env, "127.0.0.1:0") as server:
        assert server.start() is server
        address = server.address
        assert drive(address) == 3
        assert server.wait(0) is False
    assert server.wait(0) is True
    assert env.closes == 1
    with pytest.raises(rlmesh.ConnectFailedError):
        RemoteEnv(address, connect_timeout=1)


def test_context_manager_shuts_down_on_error() -> None:
    env = ClosingEnv()
    with pytest.raises(KeyError), EnvServer(env, "127.0.0.1:0") as server:
        server.start()
        raise KeyError("boom")
    assert server.wait(0) is True
    assert env.closes == 1


def test_serve_blocks_until_shutdown_from_another_thread() -> None:
    server = EnvServer(CounterEnv(), "127.0.0.1:0")
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        assert drive(server.address) == 3
        assert thread.is_alive()
    finally:
        server.shutdown()
    thread.join(5)
    assert not thread.is_alive()
    assert server.wait(0) is True


# -- serve() in a real process, stopped by signals ------------------------------------------


@contextlib.contextmanager
def sigint_not_ignored() -> Iterator[None]:
    """Children inherit an ignored SIGINT; make sure ours is not ignored while spawning."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("with_client", [False, True], ids=["idle", "client-connected"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_serve_cleanly(spawn: Callable[..., Any], signum: int,
                                    with_client: bool) -> None:
    with sigint_not_ignored():
        server = spawn("CartPole-v1")
    client = None
    try:
        if with_client:
            client = RemoteEnv(server.address, connect_timeout=10, timeout=5)
            client.reset(seed=0)
            client.step(0)
        else:
            drive(server.address)
        start = time.monotonic()
        server.process.send_signal(signum)
        code = server.process.wait(10)
        assert code == 0, f"exit code {code} after {signal.Signals(signum).name}"
        assert time.monotonic() - start < 5.0
        if client is not None:
            with pytest.raises(rlmesh.ConnectionLostError):
                client.step(0)
        with pytest.raises(rlmesh.ConnectFailedError):
            RemoteEnv(server.address, connect_timeout=1)
    finally:
        if client is not None:
            client.close()


# -- many endpoints from one client process -------------------------------------------------


def _flat(obs: Any) -> bytes:
    if isinstance(obs, dict):
        return b"".join(_flat(v) for v in obs.values())
    return np.asarray(obs).tobytes() + str(np.asarray(obs).dtype).encode()


def _trajectory(env: Any, seed: int, steps: int) -> list[tuple[bytes, float, bool, bool]]:
    sampler = env.action_space
    sampler.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = [(_flat(obs), 0.0, False, False)]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(sampler.sample())
        out.append((_flat(obs), float(reward), bool(terminated), bool(truncated)))
        if terminated or truncated:
            obs, _ = env.reset()
            out.append((_flat(obs), 0.0, False, False))
    return out


ENDPOINTS: dict[str, Callable[[], Any]] = {
    "CartPole-v1": lambda: gym.make("CartPole-v1"),
    "Pendulum-v1": lambda: gym.make("Pendulum-v1"),
    "CounterEnv": CounterEnv,
    "DictObsEnv": DictObsEnv,
}


INTERRUPT_ANOTHER_THREAD = """
import signal, threading, time
import gymnasium as gym
from rlmesh import EnvServer

server = EnvServer(gym.make("CartPole-v1"), "127.0.0.1:0")


def interrupt_this_thread():
    time.sleep(0.5)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # (not the main thread)
    time.sleep(60)


threading.Thread(target=interrupt_this_thread, daemon=True).start()
server.serve(banner=False)
print("stopped", flush=True)
"""


def test_serve_stops_on_ctrl_c_that_another_thread_receives(tmp_path: Any) -> None:
    # The kernel may hand Ctrl+C to any thread (a BLAS pool's too); the main thread,
    # waiting for connections without a deadline, must still wake and stop.
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPT_ANOTHER_THREAD)
    with sigint_not_ignored():
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "stopped"


def test_thread_pool_drives_four_endpoints_concurrently(serve: Callable[..., Any]) -> None:
    servers = {name: serve(make) for name, make in ENDPOINTS.items()}
    barrier = threading.Barrier(len(servers))

    def remote_run(name: str) -> list[tuple[bytes, float, bool, bool]]:
        env = RemoteEnv(servers[name].address, connect_timeout=5, timeout=10)
        try:
            barrier.wait(timeout=5)
            return _trajectory(env, seed=11, steps=150)
        finally:
            env.close()

    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        remote = dict(zip(servers, pool.map(remote_run, servers), strict=True))
    for name, make in ENDPOINTS.items():
        local_env = make()
        try:
            local = _trajectory(local_env, seed=11, steps=150)
        finally:
            if hasattr(local_env, "close"):
                local_env.close()
        assert remote[name] == local, f"{name}: concurrent remote run differs from local run"


# -- the ping command -------------------------------------------------------------------------


def _ping(address: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlmesh", "ping", address, *extra],
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_ping_live_server_exits_zero(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1")
    result = _ping(server.address)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"{re.escape(server.address)}: serving CartPole-v1 \(\d+\.\d ms\)\n",
                        result.stdout), result.stdout


def test_ping_custom_env_and_busy_instance(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv())
    result = _ping(server.address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{server.address}: serving a custom env (")
    holder = RemoteEnv(server.address, connect_timeout=5, timeout=5)
    try:
        result = _ping(server.address)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(
            f"{server.address}: serving a custom env (its env instance is busy) (")
    finally:
        holder.close()


def test_ping_dead_port_exits_non_zero() -> None:
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = _ping(address, "--timeout", "2")
    assert time.monotonic() - start < 15
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("rlmesh: error: could not connect to "), result.stderr


def test_rlmesh_serve_stops_on_sigint_even_if_inherited_as_ignored(tmp_path: Any) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(  # (bash's `trap '' INT` then exec: SIGINT inherited as ignored)
        ["bash", "-c", 'trap "" INT; exec "$@"', "bash", sys.executable, "-m", "rlmesh",
         "serve", "CartPole-v1", "--address", "127.0.0.1:0", "--ready-file", str(ready)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), "the server never became ready"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_rlmesh_serve_ready_fd_reports_the_resolved_address() -> None:
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlmesh", "serve", "rlmesh.envs:CounterEnv", "--address",
         "127.0.0.1:0", "--ready-fd", str(write_end)],
        pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as pipe:
            address = pipe.read().strip()  # EOF once the server closed its end
        assert re.fullmatch(r"127\.0\.0\.1:\d+", address) and not address.endswith(":0")
        with RemoteEnv(address, connect_timeout=5, timeout=5) as env:
            env.reset()
            assert env.step(0)[0] == 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_tcp_sessions_use_nodelay_and_keepalive_on_both_sides(
        serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv())
    with RemoteEnv(server.address, connect_timeout=5, timeout=5) as env:
        env.reset()
        client_sock = env._channel._conn.sock
        (session, _), = server._sessions.values()
        for sock in (client_sock, session.conn.sock):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            if hasattr(socket, "TCP_KEEPIDLE"):
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) <= 60


def test_a_session_is_registered_before_its_thread_starts(
        serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A session serves only once the server knows it (a shutdown, or a test reading the
    server's sessions right after a request, never misses a running one)."""
    server = serve(CounterEnv())
    known_at_start: list[int] = []
    start = threading.Thread.start

    def checked(thread: threading.Thread) -> None:
        if thread.name.startswith("rlmesh-session-"):
            known_at_start.append(len(server._sessions))
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", checked)
    with RemoteEnv(server.address, connect_timeout=5, timeout=5) as env:
        env.reset()
        assert len(server._sessions) == 1
    assert known_at_start == [1]


def test_tcp_sessions_on_loopback_do_not_pace_on_either_side(
        serve: Callable[..., Any]) -> None:
    """Where the host's congestion control paces (BBR), neither end of a loopback session
    keeps it (tests/transport/test_sockets.py has why)."""
    default = Path("/proc/sys/net/ipv4/tcp_congestion_control")
    if not hasattr(socket, "TCP_CONGESTION") or not default.exists():
        pytest.skip("no TCP_CONGESTION option here")
    if not default.read_text().startswith("bbr"):
        pytest.skip("this host's default congestion control does not pace: nothing to undo")
    server = serve(CounterEnv())
    with RemoteEnv(server.address, connect_timeout=5, timeout=5) as env:
        env.reset()
        (session, _), = server._sessions.values()
        for sock in (env._channel._conn.sock, session.conn.sock):
            name = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
            assert name.split(b"\0", 1)[0] in (b"cubic", b"reno")


@pytest.mark.timeout(120)
def test_shutdown_from_another_thread_as_serve_starts_never_leaves_it_waiting() -> None:
    """``shutdown()`` racing ``serve()``'s start (a parent watcher, a signal, a remote call):
    the accept loop must not wait on descriptors the shutdown has already closed."""
    rng = np.random.default_rng(0)
    # Busy neighbours, so that the woken accept loop may wait for a CPU while the shutdown
    # runs on (the window in which it used to close what the loop was about to read).
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        _race_shutdown_and_serve(rng)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _race_shutdown_and_serve(rng: np.random.Generator) -> None:
    for _ in range(150):
        server = EnvServer(CounterEnv, "127.0.0.1:0")

        def serve(server: EnvServer = server) -> None:
            # (shut down before it started: refused at once with RuntimeError)
            with contextlib.suppress(RuntimeError):
                server.serve(banner=False)

        thread = threading.Thread(target=serve)
        thread.start()
        time.sleep(float(rng.uniform(0, 0.003)))
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive(), "serve() kept waiting after shutdown()"
        assert server.wait(0)
