"""The health probe (HELLO with ``probe``) and ``rlmesh ping`` built on it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.envs import CounterEnv
from rlmesh.numpy import RemoteEnv
from tests.support.net import free_port


def test_probe_builds_no_env_on_a_factory_endpoint(serve: Callable[..., Any]) -> None:
    built: list[int] = []

    def factory() -> gym.Env[Any, Any]:
        built.append(1)
        return gym.make("CartPole-v1")

    server = serve(factory)
    assert built == [1]  # the prototype, for the contract
    for _ in range(5):
        contract = rlmesh.probe(server.address, timeout=5)
        assert contract["kind"] == "env" and contract["spec"]["id"] == "CartPole-v1"
        assert contract["busy"] is False
    assert built == [1]
    with RemoteEnv(server.address, timeout=5) as env:  # the prototype goes to this session
        env.reset(seed=0)
    assert built == [1]


def test_probe_reports_a_busy_instance_and_leaves_it_alone(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv())
    assert rlmesh.probe(server.address, timeout=5)["busy"] is False
    holder = RemoteEnv(server.address, timeout=5)
    try:
        assert rlmesh.probe(server.address, timeout=5)["busy"] is True
        holder.reset()
        assert holder.step(0)[0] == 1  # the probe did not disturb the session
    finally:
        holder.close()
    assert rlmesh.probe(server.address, timeout=5)["busy"] is False


def test_probe_of_a_dead_port_fails_fast() -> None:
    with pytest.raises(rlmesh.ConnectFailedError):
        rlmesh.probe(f"127.0.0.1:{free_port()}", timeout=2)


def test_ping_prints_what_is_served(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv())
    holder = RemoteEnv(server.address, timeout=5)
    try:
        result = subprocess.run([sys.executable, "-m", "rlmesh", "ping", server.address],
                                capture_output=True, text=True, timeout=30)
    finally:
        holder.close()
    assert result.returncode == 0, result.stderr
    assert "serving a custom env (its env instance is busy)" in result.stdout
