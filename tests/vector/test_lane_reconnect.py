"""``RemoteVectorEnv(..., reconnect=True)``: a lane whose server dies comes back on its successor.

Every server is an ``rlmesh serve CartPole-v1`` child on 127.0.0.1 port 0. A test SIGKILLs
one lane's server between steps and starts a replacement (at a new address named through a
:class:`MutableEndpoints`, or at the same address for a plain list) while the next step is
already waiting for it. The surviving lane is checked against a local Gymnasium CartPole fed
the same seed and actions: the loss of a neighbour must not disturb it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.testing import ServerProcess, spawn_server
from rlmesh.vector.endpoints import MutableEndpoints
from rlmesh.vector.live_fleet import LANE_RECONNECTED
from tests.support.processes import kill_stragglers

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

ACTIONS = [1, 0, 1, 1, 0, 0, 1, 0]


@pytest.fixture
def start() -> Iterator[Callable[..., ServerProcess]]:
    """Start ``rlmesh serve CartPole-v1`` children; every one is stopped after the test."""
    children: list[ServerProcess] = []

    def spawn(address: str = "127.0.0.1:0") -> ServerProcess:
        child = spawn_server("CartPole-v1", address=address)
        children.append(child)
        return child

    yield spawn
    for child in children:
        child.stop()
    kill_stragglers([c.pid for c in children])


def kill(server: ServerProcess) -> None:
    os.kill(server.pid, signal.SIGKILL)
    assert server.process.wait(5) == -signal.SIGKILL


def restart_soon(spawn: Callable[[], ServerProcess], then: Callable[[ServerProcess], None]
                 ) -> threading.Thread:
    """Start a replacement in a thread (the step that needs it is waiting meanwhile)."""
    thread = threading.Thread(target=lambda: then(spawn()), daemon=True)
    thread.start()
    return thread


def open_env(address: Any, **kwargs: Any) -> rlmesh.numpy.RemoteVectorEnv:
    return rlmesh.numpy.RemoteVectorEnv(address, connect_timeout=5, timeout=10, **kwargs)


def test_a_lost_lane_reconnects_to_its_restarted_server_at_a_new_address(
        start: Callable[..., ServerProcess]) -> None:
    servers = [start(), start()]
    fleet = MutableEndpoints([s.address for s in servers])
    local = gym.make("CartPole-v1")
    local_obs, _ = local.reset(seed=0)
    with open_env(fleet, reconnect=True, reconnect_timeout=30) as env:
        obs, _ = env.reset(seed=0)
        np.testing.assert_allclose(obs[0], local_obs)
        for action in ACTIONS[:3]:
            obs, *_ = env.step(np.array([action, action]))
            local_obs, *_ = local.step(action)
        before = obs[1].copy()
        kill(servers[1])
        replacement: list[ServerProcess] = []

        def named(server: ServerProcess) -> None:
            replacement.append(server)
            fleet.set(1, server.address)

        thread = restart_soon(start, named)
        obs, rewards, terminated, truncated, infos = env.step(np.array([ACTIONS[3], 0]))
        thread.join(30)
        local_obs, local_reward, *_ = local.step(ACTIONS[3])
        # The lost lane: truncated, flagged, its last observation, no reward.
        assert truncated.tolist() == [False, True] and terminated.tolist() == [False, False]
        assert infos[LANE_RECONNECTED][1] and infos[f"_{LANE_RECONNECTED}"].tolist() == [
            False, True]
        np.testing.assert_allclose(obs[1], before)
        assert rewards[1] == 0.0
        # The other lane stepped on as if nothing happened.
        np.testing.assert_allclose(obs[0], local_obs)
        assert rewards[0] == local_reward
        assert replacement[0].address != servers[1].address
        # NEXT_STEP: the lane is reset on the new server, then steps there.
        obs, rewards, terminated, truncated, infos = env.step(np.array([ACTIONS[4], 1]))
        local_obs, *_ = local.step(ACTIONS[4])
        assert rewards[1] == 0.0 and not truncated.any() and LANE_RECONNECTED not in infos
        assert env.single_observation_space.contains(obs[1])
        np.testing.assert_allclose(obs[0], local_obs)
        for action in ACTIONS[5:]:
            obs, rewards, _, truncated, _ = env.step(np.array([action, action]))
            local_obs, *_ = local.step(action)
            assert rewards.tolist() == [1.0, 1.0]
        np.testing.assert_allclose(obs[0], local_obs)


def test_same_step_mode_over_a_plain_list_and_the_same_address(
        start: Callable[..., ServerProcess]) -> None:
    servers = [start(), start()]
    with open_env([s.address for s in servers], reconnect=True, reconnect_timeout=30,
                  autoreset_mode="SameStep") as env:
        env.reset(seed=3)
        obs, *_ = env.step(np.array([1, 1]))
        before = obs[0].copy()
        kill(servers[0])
        thread = restart_soon(lambda: start(servers[0].address), lambda _: None)
        obs, rewards, _, truncated, infos = env.step(np.array([0, 0]))
        thread.join(30)
        assert truncated.tolist() == [True, False] and rewards[0] == 0.0
        assert infos[LANE_RECONNECTED][0] and not infos[f"_{LANE_RECONNECTED}"][1]
        # SAME_STEP: the lost observation is the final one; the lane is already reset.
        np.testing.assert_allclose(infos["final_obs"][0], before)
        assert infos["_final_obs"].tolist() == [True, False]
        assert abs(obs[0]).max() <= 0.05  # CartPole's reset state, not where it stood
        obs, rewards, _, truncated, _ = env.step(np.array([1, 1]))
        assert rewards.tolist() == [1.0, 1.0] and not truncated.any()


def test_without_reconnect_a_lost_lane_fails_the_step(
        start: Callable[..., ServerProcess]) -> None:
    servers = [start(), start()]
    with open_env([s.address for s in servers]) as env:
        env.reset(seed=0)
        kill(servers[1])
        with pytest.raises(rlmesh.ConnectionLostError):
            env.step(np.array([0, 0]))


def test_a_lane_whose_server_never_returns_fails_after_reconnect_timeout(
        start: Callable[..., ServerProcess]) -> None:
    servers = [start(), start()]
    fleet = MutableEndpoints([s.address for s in servers])
    with open_env(fleet, reconnect=True, reconnect_timeout=0.5) as env:
        env.reset(seed=0)
        kill(servers[0])
        fleet.set(0, None)
        with pytest.raises(rlmesh.ConnectionLostError, match="reconnect_timeout"):
            env.step(np.array([0, 0]))


def test_reconnect_needs_single_env_endpoints(start: Callable[..., ServerProcess]) -> None:
    server = start()
    with pytest.raises(ValueError, match="reconnect"):
        open_env(server.address, reconnect=True)
    with pytest.raises(ValueError, match="no address"):
        open_env(MutableEndpoints([server.address, None]), reconnect=True)


def test_async_stepping_refuses_a_reconnecting_vector_env() -> None:
    """send/recv drive fixed connections; a lane that may reconnect is step()'s job."""
    import gymnasium as gym

    import rlmesh.numpy
    from rlmesh.errors import AsyncStepError

    servers = [rlmesh.EnvServer(gym.make("CartPole-v1"), "127.0.0.1:0").start()
               for _ in range(2)]
    try:
        with rlmesh.numpy.RemoteVectorEnv([s.address for s in servers], reconnect=True) as envs:
            with pytest.raises(AsyncStepError, match="reconnect"):
                envs.async_reset(seed=0)
            envs.reset(seed=0)
            assert envs.step([0, 1])[0].shape == (2, 4)
    finally:
        for server in servers:
            server.shutdown()
