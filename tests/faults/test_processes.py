"""Faults with real processes and real sockets: SIGKILLed servers and clients, 200 clients at
once, envs whose close() hangs.

Envs that raise in step or reset are covered by ``client/test_errors.py``
(``test_env_step_raising_gives_remote_env_error_and_session_survives``,
``test_env_reset_raising_gives_remote_env_error``) and not repeated here.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
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
from rlmesh import ServeOptions
from rlmesh.numpy import RemoteEnv
from tests.support.processes import stop_child
from tests.support.values import assert_same_values

# A module the child server imports (from tmp_path, put on its PYTHONPATH).
ENV_MODULE = textwrap.dedent('''
    """Envs for tests/faults/test_processes.py, served by a child ``rlmesh serve``."""
    import time

    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces


    class Stall(gym.Env):
        """step(1) touches ``marker`` and then sleeps for ten minutes; step(0) returns."""

        metadata = {"render_modes": []}

        def __init__(self, marker: str = "") -> None:
            self.observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
            self.action_space = spaces.Discrete(2)
            self.marker = marker

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(4, np.float32), {}

        def step(self, action):
            if action == 1:
                with open(self.marker, "w"):
                    pass
                time.sleep(600)
            return np.zeros(4, np.float32), 0.0, False, False, {}


    # An env instance: ``rlmesh serve faultenvs:cartpole`` serves it to one client at a time.
    cartpole = gym.make("CartPole-v1")
''')

# A client that takes a session, steps, says READY and then waits to be killed.
CLIENT_SCRIPT = textwrap.dedent("""
    import sys, time
    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv(sys.argv[1], connect_timeout=10, timeout=10)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.step(env.action_space.sample())
    print("READY", "shm" if env.contract.get("shm") else "socket", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def env_module(tmp_path: Path) -> dict[str, str]:
    """Write ``faultenvs.py`` into tmp_path; the environment for a child that imports it."""
    (tmp_path / "faultenvs.py").write_text(ENV_MODULE)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes a test starts: killed and reaped after it."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        stop_child(proc)


def _same_host_env(same_host: bool) -> dict[str, str]:
    env = dict(os.environ)
    if same_host:
        env.pop("RLMESH_SAME_HOST", None)
    else:
        env["RLMESH_SAME_HOST"] = "0"
    return env


def _wait_for_line(proc: subprocess.Popen[bytes], within: float) -> str:
    """The child's first stdout line, or fail if it does not arrive in time."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], within)
    assert ready, f"the child said nothing within {within}s"
    return proc.stdout.readline().decode().strip()


def _run_episode(env: Any, seed: int) -> int:
    """One full episode with alternating actions; returns its length."""
    env.reset(seed=seed)
    for t in range(1, 10_000):
        _, _, terminated, truncated, _ = env.step(t % 2)
        if terminated or truncated:
            return t
    raise AssertionError("the episode never ended")


# -- a. the server is SIGKILLed while the client waits for a step ------------------------------


@pytest.mark.parametrize("same_host", [True, False], ids=["same-host-link", "RLMESH_SAME_HOST=0"])
def test_server_sigkilled_mid_step_gives_connection_lost_at_once(
        spawn: Callable[..., Any], env_module: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, same_host: bool) -> None:
    marker = tmp_path / "in-step"
    server = spawn("faultenvs:Stall", kwargs={"marker": str(marker)}, env=env_module)
    if same_host:
        monkeypatch.delenv("RLMESH_SAME_HOST", raising=False)
    else:
        monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    env = RemoteEnv(server.address, connect_timeout=10, timeout=10)
    monkeypatch.undo()
    try:
        assert env.contract["shm"] is same_host
        env.reset(seed=0)
        env.step(0)
        killed_at: list[float] = []

        def kill_when_in_step() -> None:
            deadline = time.monotonic() + 10
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # the client is blocked in its receive by now
            killed_at.append(time.monotonic())
            os.kill(server.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_in_step, daemon=True)
        killer.start()
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshError) as info:
            env.step(1)
        end = time.monotonic()
        killer.join(5)
        assert marker.exists(), "the server never entered the stalling step"
        assert killed_at, "the server was not killed"
        assert type(info.value) is rlmesh.ConnectionLostError, repr(info.value)
        assert isinstance(info.value, ConnectionError)
        assert end - killed_at[0] < 3.0, f"noticed the dead server after {end - killed_at[0]:.2f}s"
        assert end - start < 8.0  # well within timeout=10
        server.process.wait(5)
        with pytest.raises(rlmesh.ConnectionLostError):
            env.step(0)
    finally:
        start = time.monotonic()
        env.close()
        assert time.monotonic() - start < 2.0


# -- b. a client is SIGKILLed mid-episode ------------------------------------------------------


def _acquire_after_kill(address: str, within: float) -> tuple[RemoteEnv, float]:
    """Connect, retrying on EnvBusyError for up to ``within`` seconds; (env, seconds taken)."""
    start = time.monotonic()
    while True:
        try:
            return RemoteEnv(address, connect_timeout=5, timeout=10), time.monotonic() - start
        except rlmesh.EnvBusyError:
            if time.monotonic() - start > within:
                raise
            time.sleep(0.02)


def _kill_client_then_reacquire(address: str, children: list[subprocess.Popen[bytes]],
                                same_host: bool) -> None:
    client = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, address],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env=_same_host_env(same_host))
    children.append(client)
    line = _wait_for_line(client, 30)
    assert line == f"READY {'shm' if same_host else 'socket'}", line
    # While the child holds the endpoint, everyone else is refused.
    with pytest.raises(rlmesh.EnvBusyError):
        RemoteEnv(address, connect_timeout=5, timeout=5)
    client.send_signal(signal.SIGKILL)
    client.wait(5)
    env, waited = _acquire_after_kill(address, within=2.0)
    try:
        assert waited < 2.0, f"the endpoint was busy for {waited:.2f}s after the client died"
        assert _run_episode(env, seed=3) > 0
        assert env.ping("alive") == "alive"
    finally:
        env.close()


@pytest.mark.parametrize("same_host", [True, False], ids=["same-host-link", "RLMESH_SAME_HOST=0"])
def test_instance_is_free_at_once_after_its_client_is_sigkilled(
        spawn: Callable[..., Any], env_module: dict[str, str],
        children: list[subprocess.Popen[bytes]], same_host: bool) -> None:
    server = spawn("faultenvs:cartpole", env=env_module)
    _kill_client_then_reacquire(server.address, children, same_host)
    # And again: the second release works like the first.
    _kill_client_then_reacquire(server.address, children, same_host)


@pytest.mark.parametrize("same_host", [True, False], ids=["same-host-link", "RLMESH_SAME_HOST=0"])
def test_factory_session_is_freed_at_once_after_its_client_is_sigkilled(
        serve: Callable[..., Any], children: list[subprocess.Popen[bytes]],
        same_host: bool) -> None:
    # `rlmesh serve` has no --max-sessions, so this endpoint runs in-process.
    server = serve(lambda: gym.make("CartPole-v1"), options=ServeOptions(max_sessions=1))
    _kill_client_then_reacquire(server.address, children, same_host)
    _kill_client_then_reacquire(server.address, children, same_host)


# -- c. 200 clients at once on one factory endpoint --------------------------------------------


N_CLIENTS = 200


def _actions(client: int) -> list[int]:
    """A fixed action sequence per client, long enough for any CartPole episode."""
    rng = np.random.default_rng(client)
    return [int(a) for a in rng.integers(0, 2, size=500)]


def _trajectory(env: Any, seed: int, actions: list[int]) -> list[Any]:
    steps: list[Any] = [env.reset(seed=seed)]
    for action in actions:
        step = env.step(action)
        steps.append(step)
        if step[2] or step[3]:
            return steps
    raise AssertionError("the episode outlived its actions")


@pytest.mark.timeout(120)
def test_200_concurrent_clients_on_one_factory_endpoint(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1")
    connected = threading.Barrier(N_CLIENTS, timeout=60)

    def drive(client: int) -> list[Any]:
        try:
            env = RemoteEnv(server.address, connect_timeout=30, timeout=30)
        except BaseException:
            connected.abort()
            raise
        try:
            connected.wait()  # all sessions are open at the same time
            return _trajectory(env, seed=1000 + client, actions=_actions(client))
        finally:
            env.close()

    start = time.monotonic()
    with ThreadPoolExecutor(N_CLIENTS) as pool:
        futures = [pool.submit(drive, i) for i in range(N_CLIENTS)]
        errors = [f.exception() for f in futures]
    elapsed = time.monotonic() - start
    failed = [(i, repr(e)) for i, e in enumerate(errors) if e is not None]
    assert not failed, f"{len(failed)} of {N_CLIENTS} clients failed, e.g. {failed[:3]}"
    for i, future in enumerate(futures):
        local = gym.make("CartPole-v1")
        try:
            expected = _trajectory(local, seed=1000 + i, actions=_actions(i))
        finally:
            local.close()
        assert_same_values(future.result(), expected, f"client {i}")
    print(f"{N_CLIENTS} concurrent clients served in {elapsed:.2f}s")
    assert elapsed < 60, f"{N_CLIENTS} clients took {elapsed:.1f}s"
    # The server is still there and serving.
    with RemoteEnv(server.address, connect_timeout=10, timeout=10) as env:
        assert _run_episode(env, seed=0) > 0


# -- d. an env whose close() hangs ------------------------------------------------------------


HANG_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import gymnasium as gym
    from rlmesh import EnvServer, ServeOptions
    from rlmesh.numpy import RemoteEnv

    class HangingClose(gym.Wrapper):
        def close(self):
            threading.Event().wait()  # forever

    case = sys.argv[1]
    if case == "instance":
        target = HangingClose(gym.make("CartPole-v1"))
    else:
        target = lambda: HangingClose(gym.make("CartPole-v1"))
    options = ServeOptions(close_timeout=1.0, drain_timeout=1.0)
    server = EnvServer(target, "127.0.0.1:0", options=options).start()
    if case in ("instance", "factory-open-session"):
        client = RemoteEnv(server.address, timeout=5)  # left open across the shutdown
        client.reset(seed=0)
        client.step(0)
    elif case == "factory-closed-session":
        client = RemoteEnv(server.address, timeout=5)
        client.reset(seed=0)
        client.step(0)
        client.close()
    print("shutting down", flush=True)
    start = time.monotonic()
    server.shutdown()
    print(f"shutdown {time.monotonic() - start:.3f}", flush=True)
""")


@pytest.mark.parametrize("case", [
    "factory-open-session",
    "factory-closed-session",
    "factory-unused-prototype",
    "instance",
])
def test_shutdown_is_bounded_when_an_env_close_hangs(
        children: list[subprocess.Popen[bytes]], case: str) -> None:
    # close_timeout=1 and drain_timeout=1: shutdown may take both, plus slack for a slow VM.
    child = subprocess.Popen([sys.executable, "-c", HANG_SCRIPT, case],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    children.append(child)
    assert _wait_for_line(child, 30) == "shutting down"
    try:
        line = _wait_for_line(child, 8)
    except AssertionError:
        pytest.fail("shutdown() had not returned after 8s")
    assert line.startswith("shutdown "), line
    took = float(line.split()[1])
    assert took < 4.0, f"shutdown() took {took:.2f}s with close_timeout=1, drain_timeout=1"
    # The process is not stuck: the abandoned close() does not keep it from exiting.
    try:
        code = child.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not exit after shutdown() returned")
    assert code == 0
