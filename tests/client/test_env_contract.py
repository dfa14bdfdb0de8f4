"""``env_contract``, ``env_id`` and the space specs of servers and remote envs.

From docs/api/contracts.md: ``EnvContract`` is returned by ``EnvServer.env_contract``,
``RemoteEnv.env_contract`` and ``RemoteVectorEnv.env_contract``; ``id`` comes from
``env.spec.id`` and falls back to ``"UnknownEnv-v1"``; spaces come from
``observation_space``/``action_space``, or ``single_*`` for vector envs; ``env`` and ``spec``
alias the contract; ``to_dict()`` holds the same fields with the specs as dictionaries.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh import spaces
from rlmesh.envs import CounterEnv
from rlmesh.specs import EnvContract, SpaceSpec
from rlmesh.types import HasEnvContract

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore::UserWarning")]

Keep = Callable[[Any], Any]


def faces() -> list[type[Any]]:
    """``RemoteEnv`` of every face whose framework is installed."""
    found: list[type[Any]] = [rlmesh.RemoteEnv, rlmesh.numpy.RemoteEnv]
    for name in ("torch", "jax"):
        try:
            module = __import__(f"rlmesh.{name}", fromlist=["RemoteEnv"])
        except ImportError:
            continue
        found.append(module.RemoteEnv)
    return found


@pytest.mark.parametrize("face", faces(), ids=lambda cls: cls.__module__)
def test_remote_env_contract_matches_the_served_env(serve: Any, closing: Keep,
                                                    face: type[Any]) -> None:
    served = gym.make("CartPole-v1")
    server = serve(served)
    env = closing(face(server.address, connect_timeout=5, timeout=10))
    contract = env.env_contract
    assert isinstance(contract, EnvContract)
    assert contract.id == env.env_id == "CartPole-v1"
    assert contract.num_envs == 1
    assert contract.env is contract and contract.spec is contract
    assert isinstance(env.observation_space_spec, SpaceSpec)
    assert env.observation_space_spec == spaces.from_gymnasium_space(served.observation_space).spec
    assert env.action_space_spec.kind == "discrete"
    assert spaces.space_from_spec(env.observation_space_spec) == env.observation_space
    assert contract == server.env_contract
    assert env.env_contract is contract  # built once


def test_contract_fields_and_to_dict(serve: Any, closing: Keep) -> None:
    server = serve(gym.make("CartPole-v1", render_mode="rgb_array"))
    contract = server.env_contract
    assert contract.render_mode == "rgb_array"
    assert isinstance(contract.metadata, dict) and "render_fps" in contract.metadata
    as_dict = contract.to_dict()
    assert as_dict["id"] == "CartPole-v1" and as_dict["num_envs"] == 1
    assert as_dict["observation_space"] == contract.observation_space._to_dict()
    assert as_dict["action_space"]["kind"] == "discrete"
    json.dumps(as_dict)
    assert pickle.loads(pickle.dumps(contract)) == contract
    with pytest.raises(AttributeError):
        contract.id = "other"  # type: ignore[misc]


def test_env_without_spec_is_unknown(serve: Any, closing: Keep) -> None:
    server = serve(CounterEnv())
    env = closing(rlmesh.numpy.RemoteEnv(server.address, connect_timeout=5, timeout=10))
    assert env.env_id == server.env_contract.id == "UnknownEnv-v1"
    assert env.env_contract.render_mode is None
    assert env.observation_space_spec == spaces.Discrete(5).spec


def test_vector_env_contract_describes_one_sub_env(serve: Any, closing: Keep) -> None:
    server = serve(gym.make_vec("CartPole-v1", 3, vectorization_mode="sync"))
    venv = closing(rlmesh.numpy.RemoteVectorEnv(server.address, connect_timeout=5, timeout=10))
    contract = venv.env_contract
    assert contract.num_envs == 3
    assert contract.observation_space.shape == [4]  # one sub-env's, not the batch's
    assert spaces.space_from_spec(venv.observation_space_spec) == venv.single_observation_space
    assert venv.action_space_spec == spaces.Discrete(2).spec
    assert contract == server.env_contract
    assert isinstance(venv.env_id, str)


def test_vector_env_over_endpoints_counts_them_all(serve: Any, closing: Keep) -> None:
    addresses = [serve(gym.make("CartPole-v1")).address for _ in range(2)]
    venv = closing(rlmesh.RemoteVectorEnv(addresses, connect_timeout=5, timeout=10))
    assert venv.env_contract.num_envs == 2
    assert venv.env_id == "CartPole-v1"
    assert venv.observation_space_spec.shape == [4]


def test_servers_and_remote_envs_satisfy_has_env_contract(serve: Any, closing: Keep) -> None:
    server = serve(CounterEnv())
    env = closing(rlmesh.RemoteEnv(server.address, connect_timeout=5, timeout=10))
    holders: list[HasEnvContract] = [server, env]
    assert all(isinstance(h.env_contract, EnvContract) for h in holders)


def test_a_model_server_has_no_env_contract() -> None:
    server = rlmesh.Model(lambda obs: 0).serve("127.0.0.1:0", block=False)
    try:
        assert not hasattr(server, "env_contract")
        with pytest.raises(AttributeError, match="env_contract"):
            _ = server.env_id
    finally:
        server.shutdown()
