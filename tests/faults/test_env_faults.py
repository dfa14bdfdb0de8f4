"""Envs that stall, raise or hang, and the server options that contain them.

``step_deadline`` answers a stalled call in time and keeps the server serving;
``restart_on_error`` replaces a crashed env and keeps the run going; ``drain_timeout`` lets
in-flight requests finish on shutdown; ``allow_remote_shutdown`` gates ``shutdown()``; and a
per-call ``timeout=`` overrides the client's default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlmesh
from rlmesh import ServeOptions
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv


class Stalling(gym.Env[int, int]):
    """Counts steps; action 1 sleeps ``stall`` seconds, action 2 raises, 3 stalls in reset."""

    observation_space = spaces.Discrete(1000)
    action_space = spaces.Discrete(4)

    def __init__(self, stall: float = 2.0) -> None:
        self.stall = stall
        self.count = 0
        self.closed = threading.Event()
        self.stall_reset = False

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        if options and options.get("stall"):
            time.sleep(self.stall)
        self.count = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        if action == 1:
            time.sleep(self.stall)
        if action == 2:
            raise RuntimeError("the env broke")
        self.count += 1
        return self.count, 1.0, False, False, {}

    def close(self) -> None:
        self.closed.set()


# -- step deadline ---------------------------------------------------------------------------


def test_stalled_step_gets_step_deadline_error_and_server_serves_others(
        serve: Callable[..., Any]) -> None:
    built: list[Stalling] = []

    def factory() -> Stalling:
        built.append(Stalling(stall=1.5))
        return built[-1]

    server = serve(factory, options=ServeOptions(step_deadline=0.3))
    stuck = RemoteEnv(server.address, timeout=10)
    other = RemoteEnv(server.address, timeout=10)
    try:
        stuck.reset()
        other.reset()
        assert stuck.step(0)[0] == 1  # a normal step is untouched by the deadline
        start = time.monotonic()
        with pytest.raises(rlmesh.StepDeadlineError) as info:
            stuck.step(1)
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < 1.2, elapsed  # at the deadline, not after the 1.5 s stall
        assert isinstance(info.value, rlmesh.RLMeshTimeoutError)
        assert isinstance(info.value, TimeoutError)
        # The session is over; the client says so at once.
        with pytest.raises(rlmesh.ConnectionLostError):
            stuck.step(0)
        # Meanwhile another session steps normally, and new sessions are served.
        for i in range(1, 20):
            assert other.step(0)[0] == i
        with RemoteEnv(server.address, timeout=10) as fresh:
            fresh.reset()
            assert fresh.step(0)[0] == 1
        # Once the stalled call returns, its env is closed (a factory's env).
        assert built[0].closed.wait(5)
        assert server.stats["deadlines"] == 1
    finally:
        stuck.close()
        other.close()


def test_stalled_reset_is_bounded_too(serve: Callable[..., Any]) -> None:
    server = serve(lambda: Stalling(stall=1.0), options=ServeOptions(step_deadline=0.3))
    with RemoteEnv(server.address, timeout=10) as env:
        start = time.monotonic()
        with pytest.raises(rlmesh.StepDeadlineError):
            env.reset(options={"stall": True})
        assert time.monotonic() - start < 1.0


def test_stalled_instance_is_free_again_once_the_call_returns(serve: Callable[..., Any]) -> None:
    env_instance = Stalling(stall=0.8)
    server = serve(env_instance, options=ServeOptions(step_deadline=0.2))
    with RemoteEnv(server.address, timeout=10) as env:
        env.reset()
        with pytest.raises(rlmesh.StepDeadlineError):
            env.step(1)
    # While the call still runs the instance is held; afterwards the next client gets it.
    deadline = time.monotonic() + 5
    while True:
        try:
            with RemoteEnv(server.address, timeout=10) as env:
                env.reset()
                assert env.step(0)[0] == 1
            break
        except rlmesh.EnvBusyError:
            assert time.monotonic() < deadline, "the instance was never released"
            time.sleep(0.05)
    assert not env_instance.closed.is_set()


# -- restart on error ------------------------------------------------------------------------


def test_crashed_env_is_replaced_and_the_episode_truncated(serve: Callable[..., Any]) -> None:
    built: list[Stalling] = []

    def factory() -> Stalling:
        built.append(Stalling())
        return built[-1]

    server = serve(factory, options=ServeOptions(restart_on_error=2))
    with RemoteEnv(server.address, timeout=10) as env:
        env.reset()
        assert env.step(0)[0] == 1
        obs, reward, terminated, truncated, info = env.step(2)
        assert (obs, reward, terminated, truncated) == (0, 0.0, False, True)
        restart = info["rlmesh_restart"]
        assert restart["op"] == "step" and "the env broke" in restart["error"]
        assert restart["restart"] == 1 and restart["restarts_left"] == 1
        assert built[0].closed.is_set() and len(built) == 2
        # The run goes on with the fresh env.
        env.reset()
        assert env.step(0)[0] == 1
        env.step(2)  # second restart, the last one allowed
        with pytest.raises(rlmesh.RemoteEnvError) as err:
            env.step(2)  # the bound is reached: the error reaches the client
        assert err.value.remote_type == "RuntimeError"
        assert env.step(0)[0] == 1  # and the session still works
    assert server.stats["restarts"] == 2


def test_restart_applies_to_vector_envs(serve: Callable[..., Any]) -> None:
    def factory() -> gym.vector.VectorEnv[Any, Any, Any]:
        return gym.vector.SyncVectorEnv([Stalling for _ in range(3)])

    server = serve(factory, options=ServeOptions(restart_on_error=1))
    with RemoteVectorEnv(server.address, timeout=10) as env:
        env.reset(seed=0)
        obs, rewards, terms, truncs, info = env.step(np.array([0, 2, 0]))
        np.testing.assert_array_equal(obs, [0, 0, 0])
        np.testing.assert_array_equal(rewards, [0.0, 0.0, 0.0])
        np.testing.assert_array_equal(terms, [False] * 3)
        np.testing.assert_array_equal(truncs, [True] * 3)
        assert "the env broke" in info["rlmesh_restart"]["error"]


def test_restart_needs_a_factory() -> None:
    with pytest.raises(TypeError, match="factory"):
        rlmesh.EnvServer(Stalling(), "127.0.0.1:0", options=ServeOptions(restart_on_error=1))


# -- drain and remote shutdown ----------------------------------------------------------------


def test_shutdown_drains_an_in_flight_step(serve: Callable[..., Any]) -> None:
    server = serve(lambda: Stalling(stall=0.5), options=ServeOptions(drain_timeout=5))
    env = RemoteEnv(server.address, timeout=10)
    env.reset()
    result: list[Any] = []

    def step() -> None:
        try:
            result.append(env.step(1))
        except rlmesh.RLMeshError as exc:
            result.append(exc)

    thread = threading.Thread(target=step)
    thread.start()
    time.sleep(0.15)  # the step is running on the server
    start = time.monotonic()
    server.shutdown()
    assert time.monotonic() - start < 3
    thread.join(5)
    assert result and not isinstance(result[0], Exception), result
    assert result[0][0] == 1  # the in-flight step finished and its reply arrived
    with pytest.raises(rlmesh.ConnectionLostError):
        env.step(0)
    env.close()


def test_drain_is_bounded_by_drain_timeout(serve: Callable[..., Any]) -> None:
    server = serve(lambda: Stalling(stall=3), options=ServeOptions(drain_timeout=0.3,
                                                                    close_timeout=0.5))
    env = RemoteEnv(server.address, timeout=10)
    env.reset()
    outcome: list[BaseException] = []

    def step() -> None:
        try:
            env.step(1)
        except rlmesh.RLMeshError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=step)
    thread.start()
    time.sleep(0.15)
    start = time.monotonic()
    server.shutdown()
    assert time.monotonic() - start < 2.0
    thread.join(5)
    # The step outlived the drain: its connection was closed, and the client was told so.
    assert len(outcome) == 1 and isinstance(outcome[0], rlmesh.ConnectionLostError), outcome
    env.close()


def test_remote_shutdown_is_refused_unless_allowed(serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with RemoteEnv(server.address, timeout=10) as env:
        with pytest.raises(rlmesh.NotAllowedError) as info:
            env.shutdown()
        assert isinstance(info.value, PermissionError)
        env.reset(seed=0)  # the session is fine
        env.step(0)
    assert not server.wait(0.2)


def test_remote_shutdown_when_allowed(serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"),
                   options=ServeOptions(allow_remote_shutdown=True))
    bystander = RemoteEnv(server.address, timeout=10)
    bystander.reset(seed=0)
    with RemoteEnv(server.address, timeout=10) as env:
        env.reset(seed=0)
        env.shutdown()
        assert env.closed
    assert server.wait(5)
    with pytest.raises(rlmesh.ConnectionLostError):
        bystander.step(0)
    bystander.close()


# -- per-call timeouts ------------------------------------------------------------------------


def test_per_call_timeout_overrides_the_default(serve: Callable[..., Any]) -> None:
    server = serve(lambda: Stalling(stall=0.6))
    with RemoteEnv(server.address, timeout=0.2) as env:
        env.reset()
        assert env.step(1, timeout=3)[0] == 1  # longer than the default: fine
        assert env.timeout == 0.2
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshTimeoutError):
            env.step(1, timeout=0.1)
        assert time.monotonic() - start < 0.5


def test_timeout_property_is_settable(serve: Callable[..., Any]) -> None:
    server = serve(lambda: Stalling(stall=0.5))
    with RemoteEnv(server.address, timeout=0.1) as env:
        env.reset()
        env.timeout = 5
        assert env.timeout == 5
        assert env.step(1)[0] == 1
        with pytest.raises(ValueError):
            env.timeout = 0


SLOW_MODULE = """
import time
import gymnasium as gym


class Slow(gym.Env):
    observation_space = gym.spaces.Discrete(100)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        self.count = 0
        return 0, {}

    def step(self, action):
        time.sleep(0.6 * action)
        self.count += 1
        return self.count, 1.0, False, False, {}
"""


def test_sigterm_drains_the_step_in_flight_then_exits(spawn: Callable[..., Any],
                                                      tmp_path: Any) -> None:
    import os
    import signal

    (tmp_path / "slowmod.py").write_text(SLOW_MODULE)
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    server = spawn("slowmod:Slow", env={**os.environ, "PYTHONPATH": path},
                   extra_args=["--drain-timeout", "5"])
    env = RemoteEnv(server.address, timeout=10)
    env.reset()
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(env.step(1)))
    thread.start()
    time.sleep(0.2)  # the step is running in the server
    server.process.send_signal(signal.SIGTERM)
    thread.join(5)
    assert result and result[0][0] == 1, "the step in flight lost its reply"
    assert server.process.wait(10) == 0
    with pytest.raises(rlmesh.ConnectionLostError):
        env.step(0)
    env.close()
