"""Gymnasium's ``SyncVectorEnv``, with a shorter step where the spaces allow one.

``make_vec``'s workers, and the sub-envs it steps in the caller's process, run one
:class:`LeanSyncVectorEnv` each. For next-step autoreset (Gymnasium's default) over a Box
observation and an array action batch, its ``step`` does what ``SyncVectorEnv.step`` does,
in the same order and with the same results (the same env calls with the same actions, the
same arrays, the same ``_key``-masked infos), with less Python per sub-env: actions are
indexed rather than iterated through ``iterate``, results are written straight into the
batch arrays, and empty infos are not merged. Every other case is Gymnasium's own ``step``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces as gs
from gymnasium.vector import AutoresetMode, SyncVectorEnv

__all__ = ["LeanSyncVectorEnv"]

_ARRAY_BATCHES = (gs.Box, gs.MultiDiscrete, gs.MultiBinary)
"""Batched action spaces whose batches are arrays indexed along the first axis."""


class LeanSyncVectorEnv(SyncVectorEnv):
    """A ``gymnasium.vector.SyncVectorEnv`` whose common-case ``step`` is shorter.

    Takes ``SyncVectorEnv``'s arguments.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lean = (self.autoreset_mode == AutoresetMode.NEXT_STEP
                      and type(self.single_observation_space) is gs.Box
                      and type(self.action_space) in _ARRAY_BATCHES
                      and isinstance(self._observations, np.ndarray))

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step every sub-env (as ``SyncVectorEnv.step``)."""
        if not self._lean or not isinstance(actions, np.ndarray) \
                or actions.shape[:1] != (self.num_envs,):
            return super().step(actions)  # (Gymnasium's iterate() and its errors)
        infos: dict[str, Any] = {}
        env_obs: list[Any] = self._env_obs
        rewards = self._rewards
        terminations, truncations = self._terminations, self._truncations
        autoreset = self._autoreset_envs
        for i, env in enumerate(self.envs):
            if autoreset[i]:
                env_obs[i], env_info = env.reset()
                rewards[i] = 0.0
                terminations[i] = False
                truncations[i] = False
            else:
                env_obs[i], rewards[i], terminations[i], truncations[i], env_info = \
                    env.step(actions[i])
            if env_info:
                infos = self._add_info(infos, env_info, i)
        observations = np.stack(env_obs, axis=0, out=self._observations)
        self._observations = observations
        self._autoreset_envs = np.logical_or(terminations, truncations)
        return (observations.copy() if self.copy else observations, rewards.copy(),
                terminations.copy(), truncations.copy(), infos)
