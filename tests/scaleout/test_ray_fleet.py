"""rlmesh.ray fleets on a local Ray cluster: serving, seeded evaluation, restarts, teardown.

Every server binds 127.0.0.1 (Ray's local-only mode, see conftest) and clients connect there.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.errors import AuthenticationError, FleetError
from rlmesh.vector.endpoints import EndpointSet
from tests.support.processes import alive, wait_dead, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

SMALL = {"CPU": 0.25}  # four servers fit on the 2-CPU test cluster


def upright(obs: Any) -> int:
    """A deterministic CartPole policy: push towards the pole's lean."""
    return int(np.asarray(obs)[2] > 0)


def local_returns(seeds: range) -> dict[int, float]:
    env = gym.make("CartPole-v1")
    returns = {}
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(upright(obs))
            total += float(reward)
            done = terminated or truncated
        returns[seed] = total
    env.close()
    return returns


def listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) == 0


@pytest.fixture(scope="module")
def fleet(ray_cluster: Any) -> Any:
    with rlmesh.ray.serve("CartPole-v1", 3, resources=SMALL, poll_interval=0.2,
                          start_timeout=120) as fleet:
        yield fleet


def kill_server(fleet: Any, index: int) -> tuple[int, str]:
    """SIGKILL server ``index``'s process; returns its old pid and address."""
    row = fleet.status()[index]
    os.kill(row["pid"], signal.SIGKILL)
    return row["pid"], row["address"]


def test_a_fleet_serves_on_loopback_with_a_token(fleet: Any) -> None:
    addresses = fleet.wait_ready(60)
    assert len(addresses) == 3 and len(set(addresses)) == 3
    assert all(address.startswith("127.0.0.1:") for address in addresses)
    assert isinstance(fleet, EndpointSet)
    rows = fleet.status()
    assert [row["index"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert row["alive"] and row["state"] == "ALIVE" and row["restarts"] == 0
        assert alive(row["pid"]) and row["node"]
    assert fleet.token
    with pytest.raises(AuthenticationError):
        rlmesh.RemoteEnv(addresses[0]).reset(seed=0)
    env = rlmesh.RemoteEnv(addresses[0], token=fleet.token)
    try:
        obs, _ = env.reset(seed=0)
        assert len(obs) == 4
    finally:
        env.close()


def test_thirty_seeded_episodes_match_one_local_env(fleet: Any) -> None:
    result = fleet.evaluate(upright, episodes=30, seed=100)
    assert result.complete
    played = {episode.seed: episode.reward for episode in result.episodes}
    assert sorted(played) == list(range(100, 130))
    assert played == local_returns(range(100, 130))
    assert len({episode.endpoint for episode in result.episodes}) > 1


def test_a_killed_server_is_restarted_at_a_new_address_and_used_again(fleet: Any) -> None:
    fleet.wait_ready(60)
    version = fleet.version
    old_pid, old_address = kill_server(fleet, 1)
    assert wait_for(lambda: fleet.version != version, within=30, poll=0.05)
    addresses = fleet.wait_ready(60)
    assert addresses[1] != old_address
    assert addresses[0] == fleet.status()[0]["address"]  # other slots keep theirs
    row = fleet.status()[1]
    assert row["restarts"] >= 1 and row["pid"] != old_pid and not alive(old_pid)
    env = rlmesh.RemoteEnv(addresses[1], token=fleet.token)
    try:
        env.reset(seed=0)
        env.step(0)
    finally:
        env.close()
    envs = fleet.vector_env()  # a new vector env over the fleet reaches every server
    try:
        envs.reset(seed=0)
        envs.step(np.zeros(3, dtype=np.int64))
    finally:
        envs.close()


def test_evaluate_plays_every_episode_once_through_a_kill(fleet: Any) -> None:
    fleet.wait_ready(60)
    calls = {"n": 0}
    killed: dict[str, Any] = {}

    def restarted() -> bool:
        return fleet.addresses[0] not in (None, killed["address"])

    def policy(obs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 400 and not killed:
            killed["pid"], killed["address"] = kill_server(fleet, 0)
        if killed:
            # Every slot waits here until server 0 serves again, so that episodes are left
            # for it: the others could otherwise play them all while it restarts.
            assert wait_for(restarted, within=60, poll=0.02)
        return upright(obs)

    result = rlmesh.evaluate(policy, fleet, episodes=30, seed=0, token=fleet.token)
    assert killed and result.complete
    assert sorted(e.index for e in result.episodes) == list(range(30))
    assert {e.seed: e.reward for e in result.episodes} == local_returns(range(30))
    assert fleet.addresses[0] in {e.endpoint for e in result.episodes}  # the restarted one


def test_a_vector_env_over_the_fleet_survives_a_kill(fleet: Any) -> None:
    fleet.wait_ready(60)
    envs = rlmesh.numpy.RemoteVectorEnv(fleet, token=fleet.token, reconnect=True,
                                        reconnect_timeout=60)
    try:
        envs.reset(seed=0)
        kill_server(fleet, 2)
        flags = None
        for _ in range(50):
            _, _, _, truncated, info = envs.step(np.zeros(3, dtype=np.int64))
            flags = info.get("_rlmesh_lane_reconnected")
            if flags is not None and flags.any():
                break
        assert flags is not None and flags.tolist() == [False, False, True]
        assert truncated[2]
        for _ in range(20):  # the lane goes on, on the restarted server
            envs.step(np.zeros(3, dtype=np.int64))
    finally:
        envs.close()


def test_a_named_fleet_is_found_and_close_leaves_nothing_behind(ray_cluster: Any) -> None:
    from ray._private import state

    fleet = rlmesh.ray.serve("CartPole-v1", 2, resources=SMALL, name="rlmesh-close-test",
                             num_envs_per_server=2, start_timeout=120)
    try:
        with pytest.raises(FleetError, match="exists already"):
            rlmesh.ray.serve("CartPole-v1", 1, resources=SMALL, name="rlmesh-close-test")
        found = rlmesh.ray.get_fleet("rlmesh-close-test")
        assert found.token == fleet.token and found.wait_ready(60) == fleet.wait_ready(60)
        found.disconnect()
        envs = fleet.vector_env()
        assert envs.num_envs == 4  # two vector endpoints of two envs joined
        envs.close()
        rows = fleet.status()
        actor_ids = [a._actor_id.hex() for a in fleet._actors]
    finally:
        fleet.close()
    assert wait_dead([row["pid"] for row in rows], within=30) == []
    assert all(state.actors(actor_id=aid)["State"] == "DEAD" for aid in actor_ids)
    assert not any(listening(row["address"]) for row in rows)
    with pytest.raises(FleetError, match="no rlmesh fleet"):
        rlmesh.ray.get_fleet("rlmesh-close-test")
    fleet.close()  # idempotent


def test_bad_input_is_refused_before_ray_is_asked(ray_cluster: Any) -> None:
    with pytest.raises(ValueError, match="env instance"):
        rlmesh.ray.serve(gym.make("CartPole-v1"), 1)
    with pytest.raises(ValueError, match="strategy"):
        rlmesh.ray.serve("CartPole-v1", 1, strategy="EVERYWHERE")
    with pytest.raises(ValueError, match="needs a name"):
        rlmesh.ray.serve("CartPole-v1", 1, detached=True)
    with pytest.raises(FleetError, match="could not reserve"):
        rlmesh.ray.serve("CartPole-v1", 2, resources={"CPU": 2}, start_timeout=2)


def test_watching_survives_a_concurrent_status(fleet: Any) -> None:
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(20):
                fleet.status()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and all(row["alive"] for row in fleet.status())
