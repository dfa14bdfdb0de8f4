"""Stable-Baselines3 trains through rlmesh with no change to SB3.

PPO learns CartPole through a ``RemoteEnv`` and through a ``RemoteVectorEnv`` (with
:func:`rlmesh.sb3.to_sb3`), and each trained policy beats the random baseline by far. The
adapter is also checked step by step against SB3's own ``DummyVecEnv``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from tests.support.deps import need

pytestmark = pytest.mark.timeout(180)

sb3 = need("stable_baselines3")


def score(model: Any) -> float:
    """Mean return of the trained policy, acting deterministically, over 10 seeds."""
    policy = rlmesh.numpy.Model(lambda o: int(model.predict(o, deterministic=True)[0]))
    return rlmesh.run(policy, gym.make("CartPole-v1"), seeds=range(10)).mean_reward


def random_score() -> float:
    return rlmesh.run(rlmesh.RANDOM_SAMPLE, gym.make("CartPole-v1"), seeds=range(10)).mean_reward


def test_ppo_learns_through_a_remote_env(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1")
    env = RemoteEnv(server.address)
    model = sb3.PPO("MlpPolicy", env, seed=0, n_steps=512, batch_size=64, verbose=0)
    model.learn(12_000)
    env.close()
    trained, baseline = score(model), random_score()
    assert trained > max(3 * baseline, 100), (trained, baseline)


def test_ppo_learns_through_a_remote_vector_env(spawn: Callable[..., Any]) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy

    import rlmesh.sb3

    server = spawn("CartPole-v1", extra_args=["--num-envs", "4"])
    venv = rlmesh.sb3.to_sb3(RemoteVectorEnv(server.address))
    model = sb3.PPO("MlpPolicy", venv, seed=0, n_steps=256, batch_size=64, verbose=0)
    model.learn(12_000)
    # Episode statistics reach SB3's logger (rollout/ep_rew_mean) without a VecMonitor added
    # by hand, and evaluate_policy finds the monitor (no "not wrapped" warning).
    assert len(model.ep_info_buffer) > 0
    assert {"r", "l", "t"} <= set(model.ep_info_buffer[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, _ = evaluate_policy(model, venv, n_eval_episodes=4)
    assert mean > 100
    venv.close()
    trained, baseline = score(model), random_score()
    assert trained > max(3 * baseline, 100), (trained, baseline)


@pytest.mark.parametrize("kind", ["served-vector-env", "same-step-fleet"])
def test_adapter_matches_sb3_dummy_vec_env(spawn: Callable[..., Any], kind: str) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    import rlmesh.sb3

    if kind == "served-vector-env":  # NextStep autoreset on the server
        server = spawn("CartPole-v1", extra_args=["--num-envs", "3"])
        remote = RemoteVectorEnv(server.address)
    else:
        servers = [spawn("CartPole-v1") for _ in range(3)]
        remote = RemoteVectorEnv([s.address for s in servers], autoreset_mode="SameStep")
    ours = rlmesh.sb3.to_sb3(remote)
    theirs = DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(3)])
    ours.seed(7)
    theirs.seed(7)
    np.testing.assert_array_equal(ours.reset(), theirs.reset())
    rng = np.random.default_rng(0)
    endings = 0
    for _ in range(300):
        actions = rng.integers(0, 2, size=3)
        o1, r1, d1, i1 = ours.step(actions)
        o2, r2, d2, i2 = theirs.step(actions)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for k in np.flatnonzero(d1):
            endings += 1
            np.testing.assert_array_equal(i1[k]["terminal_observation"],
                                          i2[k]["terminal_observation"])
            assert i1[k]["TimeLimit.truncated"] == i2[k]["TimeLimit.truncated"]
    assert endings >= 10
    ours.close()
    theirs.close()
