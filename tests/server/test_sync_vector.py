"""``LeanSyncVectorEnv``: Gymnasium's ``SyncVectorEnv`` results, step for step.

Both are driven with the same seeds and actions and compared strictly (types, dtypes,
shapes, bytes, ``_key`` masks), on the shortened path (next-step autoreset, Box
observations, array actions) and on the paths it leaves to Gymnasium.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlmesh.envs import DictObsEnv
from rlmesh.server.sync_vector import LeanSyncVectorEnv
from tests.vector.test_make_vec import lockstep


class Counted(gym.Wrapper[Any, Any, Any, Any]):
    """Infos on some steps only (a count every third step, the length at the end)."""

    def reset(self, **kwargs: Any) -> Any:
        self.count = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        info = dict(info)
        if self.count % 3 == 0:
            info["count"] = self.count
        if terminated or truncated:
            info["length"] = {"steps": np.int32(self.count)}
        return obs, reward, terminated, truncated, info


def cartpole_with_stats() -> gym.Env[Any, Any]:
    """CartPole whose infos are masked batches (see :class:`Counted`)."""
    return Counted(gym.make("CartPole-v1"))


@pytest.mark.parametrize(("factory", "lean"), [
    (lambda: gym.make("CartPole-v1"), True),
    (cartpole_with_stats, True),
    (lambda: gym.make("Pendulum-v1", max_episode_steps=40), True),  # Box actions
    (DictObsEnv, False),
])
@pytest.mark.parametrize("n", [1, 4])
def test_next_step_matches_sync_vector_env(factory: Any, lean: bool, n: int) -> None:
    got = LeanSyncVectorEnv([factory] * n)
    want = SyncVectorEnv([factory] * n)
    assert got._lean is lean
    counts = lockstep(got, want, steps=300, reseed_at=150)
    assert counts["ends"] > 0
    got.close()
    want.close()


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_other_autoreset_modes_are_gymnasiums(mode: AutoresetMode) -> None:
    env = LeanSyncVectorEnv([cartpole_with_stats] * 3, autoreset_mode=mode)
    assert not env._lean
    want = SyncVectorEnv([cartpole_with_stats] * 3, autoreset_mode=mode)
    if mode == AutoresetMode.SAME_STEP:
        assert lockstep(env, want, steps=200, reseed_at=None)["final_obs"] > 0
    else:
        for e in (env, want):
            e.reset(seed=1)
        for _ in range(5):
            a, b = env.step(np.ones(3, np.int64)), want.step(np.ones(3, np.int64))
            np.testing.assert_array_equal(a[0], b[0])


def test_actions_of_other_forms_behave_as_in_gymnasium() -> None:
    env = LeanSyncVectorEnv([lambda: gym.make("CartPole-v1")] * 3)
    want = SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 3)
    for e in (env, want):
        e.reset(seed=0)
    a, b = env.step([1, 0, 1]), want.step([1, 0, 1])  # a list: Gymnasium's own path
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    for bad in (np.zeros(2, np.int64), np.zeros(4, np.int64)):
        with pytest.raises(ValueError) as lean_error:
            env.step(bad)
        with pytest.raises(ValueError) as gym_error:
            want.step(bad)
        assert str(lean_error.value) == str(gym_error.value)


def test_returned_arrays_are_copies_unless_copy_is_false() -> None:
    env = LeanSyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
    env.reset(seed=0)
    first = env.step(np.zeros(2, np.int64))
    second = env.step(np.zeros(2, np.int64))
    assert not np.shares_memory(first[0], second[0])
    assert not np.shares_memory(first[1], second[1])
    shared = LeanSyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2, copy=False)
    shared.reset(seed=0)
    one = shared.step(np.zeros(2, np.int64))[0]
    assert np.shares_memory(one, shared.step(np.zeros(2, np.int64))[0])
