"""ServeOptions.max_sessions and ServeOptions.idle_timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.envs import CounterEnv
from rlmesh.numpy import RemoteEnv


def test_max_sessions_refuses_at_once_and_admits_after_a_close(
        serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"),
                   options=rlmesh.ServeOptions(max_sessions=2))
    first = RemoteEnv(server.address, timeout=5)
    second = RemoteEnv(server.address, timeout=5)
    try:
        start = time.monotonic()
        with pytest.raises(rlmesh.EnvBusyError, match="maximum of 2 sessions"):
            RemoteEnv(server.address, connect_timeout=5, timeout=5)
        assert time.monotonic() - start < 2
        assert rlmesh.probe(server.address)["kind"] == "env"  # probes are not sessions
        first.close()
        third = RemoteEnv(server.address, timeout=5)
        third.reset(seed=0)
        third.step(0)
        third.close()
        second.reset(seed=1)
    finally:
        first.close()
        second.close()


def test_idle_session_is_closed_and_its_env_freed(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv(), options=rlmesh.ServeOptions(idle_timeout=0.3))
    idle = RemoteEnv(server.address, timeout=5)
    try:
        idle.reset()
        assert idle.step(0)[0] == 1
        time.sleep(0.8)
        with pytest.raises(rlmesh.ConnectionLostError):
            idle.step(0)
    finally:
        idle.close()
    # The instance is free again: a new client is served (no EnvBusyError).
    fresh = RemoteEnv(server.address, timeout=5)
    try:
        fresh.reset()
        assert fresh.step(0)[0] == 1
    finally:
        fresh.close()


def test_active_session_outlives_the_idle_timeout(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv(episode_length=10_000),
                   options=rlmesh.ServeOptions(idle_timeout=0.3))
    with RemoteEnv(server.address, timeout=5) as env:
        env.reset()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # busy for longer than the timeout, never idle
            env.step(0)
            time.sleep(0.05)
        env.step(0)


@pytest.mark.parametrize("kwargs", [{"max_sessions": 0}, {"idle_timeout": 0},
                                    {"idle_timeout": -1.0}])
def test_bad_limits_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        rlmesh.ServeOptions(**kwargs)
