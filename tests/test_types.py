"""``rlmesh.types``: the structural protocols describe what rlmesh actually accepts."""

from __future__ import annotations

import gymnasium as gym

import rlmesh
from rlmesh import types
from rlmesh.envs import CounterEnv


def test_the_names_the_reference_documents() -> None:
    assert set(types.__all__) == {
        "EnvLike", "EnvTarget", "HasAddress", "HasEnvContract", "InfoDict", "LocalEnvTarget",
        "Metadata", "PrimitiveValue", "SpaceLike", "SpecArg", "SupportsMake",
        "SupportsResetStep", "Value", "VectorEnvLike", "ViewArg"}
    for name in types.__all__:
        assert getattr(types, name) is not None


def test_protocols_match_envs_and_spaces() -> None:
    checkable = {name: getattr(types, name)
                 for name in ("SpaceLike", "EnvLike", "VectorEnvLike", "SupportsResetStep",
                              "SupportsMake", "HasAddress")}
    env = gym.make("CartPole-v1")
    assert isinstance(env, checkable["EnvLike"])
    assert isinstance(CounterEnv(), checkable["SupportsResetStep"])
    assert isinstance(env.observation_space, checkable["SpaceLike"])
    vector = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    assert isinstance(vector, checkable["VectorEnvLike"])
    assert not isinstance(env, checkable["SupportsMake"])
    assert not isinstance(env, checkable["HasAddress"])


def test_build_names_this_version_and_protocol() -> None:
    assert rlmesh.__build__.startswith(rlmesh.__version__)
    assert str(rlmesh.PROTOCOL_VERSION) in rlmesh.__build__
