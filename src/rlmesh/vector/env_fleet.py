"""Many single-env endpoints driven as one batch, pipelined from one thread.

Every request goes out before any reply is read, so N endpoints cost about one round trip
per batch, not N. Autoreset follows Gymnasium's ``SyncVectorEnv`` exactly, so the same seeds
and actions give the same trajectories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.client.gather import gather
from rlmesh.vector.autoreset import AutoresetMode
from rlmesh.vector.batching import check_reset_mask, expand_seeds
from rlmesh.wire.schema import schema_to_space

__all__ = ["Fleet", "InfoAdder"]

InfoAdder = Any  # VectorEnv._add_info, bound


class Fleet:
    """The sessions behind a multi-address :class:`~rlmesh.RemoteVectorEnv`.

    Args:
        channels: One connected channel per single-env endpoint; all must serve equal spaces.
        autoreset_mode: When finished sub-envs are reset.
        add_info: The vector env's ``_add_info`` (Gymnasium's ``_key`` mask convention).
    """

    def __init__(self, channels: Sequence[Channel], autoreset_mode: AutoresetMode,
                 add_info: InfoAdder) -> None:
        self.channels = list(channels)
        self.num_envs = len(self.channels)
        self.autoreset_mode = autoreset_mode
        self._add_info = add_info
        first = self.channels[0].contract
        self.single_observation_space = schema_to_space(first["observation_space"])
        self.single_action_space = schema_to_space(first["action_space"])
        for channel in self.channels[1:]:
            obs = schema_to_space(channel.contract["observation_space"])
            act = schema_to_space(channel.contract["action_space"])
            if obs != self.single_observation_space or act != self.single_action_space:
                raise ValueError(
                    f"{channel.address} serves {obs} / {act}, but {self.channels[0].address} "
                    f"serves {self.single_observation_space} / {self.single_action_space}; "
                    "all endpoints of one vector env need equal spaces"
                )
        n = self.num_envs
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self._autoreset = np.zeros(n, dtype=np.bool_)
        self._rewards = np.zeros(n, dtype=np.float64)
        self._terminations = np.zeros(n, dtype=np.bool_)
        self._truncations = np.zeros(n, dtype=np.bool_)
        self._env_obs: list[Any] = [None] * n

    @property
    def finished(self) -> np.ndarray[Any, Any]:
        """Which sub-envs ended their episode and await their autoreset (changed in place)."""
        return self._autoreset

    def _observations(self) -> Any:
        out: Any = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, self._env_obs, out)

    # -- the vector API -----------------------------------------------------------------------

    def reset(self, seed: int | Sequence[int | None] | None,
              options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        """Reset every sub-env (or those in ``options["reset_mask"]``)."""
        n = self.num_envs
        seeds = expand_seeds(seed, n)
        options = dict(options) if options is not None else None
        mask = np.ones(n, dtype=np.bool_)
        if options is not None and "reset_mask" in options:
            mask = check_reset_mask(options.pop("reset_mask"), n)
        indices = [i for i in range(n) if mask[i]]
        for i in indices:
            self._submit(i, P.OP_RESET, seeds[i], options)
        replies = self._gather(indices)
        self._terminations[mask] = False
        self._truncations[mask] = False
        self._autoreset[mask] = False
        infos: dict[str, Any] = {}
        for i, reply in zip(indices, replies, strict=True):
            self._env_obs[i] = reply[2]
            infos = self._add_info(infos, reply[3], i)
        return self._observations(), infos

    def step_async(self, actions: Any) -> None:
        """Send every sub-env its action (or its autoreset) without waiting.

        The caller (:class:`~rlmesh.RemoteVectorEnv`) pairs it with :meth:`step_wait`.
        """
        mode = self.autoreset_mode
        per_env = list(iterate(self.action_space, actions))
        if len(per_env) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {len(per_env)}")
        if mode == AutoresetMode.DISABLED and self._autoreset.any():
            raise RuntimeError(
                "autoreset is disabled and sub-envs "
                f"{np.flatnonzero(self._autoreset).tolist()} have finished: reset them with "
                "reset(options={'reset_mask': mask}) first"
            )
        for i, action in enumerate(per_env):
            if mode == AutoresetMode.NEXT_STEP and self._autoreset[i]:
                self._submit(i, P.OP_RESET, None, None)
            else:
                self._submit(i, P.OP_STEP, action)

    def step_wait(self) -> tuple[Any, np.ndarray[Any, Any], np.ndarray[Any, Any],
                                 np.ndarray[Any, Any], dict[str, Any]]:
        """Collect the replies of :meth:`step_async`."""
        replies = self._gather(range(self.num_envs))
        same_step = self.autoreset_mode == AutoresetMode.SAME_STEP
        env_infos: list[Any] = [None] * self.num_envs
        finals: dict[int, dict[str, Any]] = {}
        for i, reply in enumerate(replies):
            if len(reply) == 4:  # a NEXT_STEP autoreset
                self._env_obs[i], env_infos[i] = reply[2], reply[3]
                self._rewards[i] = 0.0
                self._terminations[i] = False
                self._truncations[i] = False
                continue
            (self._env_obs[i], self._rewards[i], self._terminations[i],
             self._truncations[i], env_infos[i]) = reply[2:7]
            if same_step and (self._terminations[i] or self._truncations[i]):
                finals[i] = {"final_obs": self._env_obs[i], "final_info": env_infos[i]}
        if finals:  # SAME_STEP: reset the finished ones now, pipelined too
            for i in finals:
                self._submit(i, P.OP_RESET, None, None)
            for i, reply in zip(finals, self._gather(list(finals)), strict=True):
                self._env_obs[i], env_infos[i] = reply[2], reply[3]
        # Infos in sub-env order, as SyncVectorEnv builds them (key order and dtypes follow).
        infos: dict[str, Any] = {}
        for i, env_info in enumerate(env_infos):
            if i in finals:
                infos = self._add_info(infos, finals[i], i)
            infos = self._add_info(infos, env_info, i)
        np.logical_or(self._terminations, self._truncations, out=self._autoreset)
        return (self._observations(), np.copy(self._rewards), np.copy(self._terminations),
                np.copy(self._truncations), infos)

    # -- the seam of lane reconnection (rlmesh.vector.live_fleet) -----------------------------

    def _submit(self, lane: int, op: int, *args: Any) -> None:
        """Send lane ``lane`` a pipelined request."""
        self.channels[lane].submit(op, *args)

    def _gather(self, lanes: Sequence[int]) -> list[list[Any]]:
        """Collect the replies of the listed lanes' requests, in order."""
        return gather(self.channels, lanes)

    def render(self) -> tuple[Any, ...]:
        """Every sub-env's frame, in order."""
        for channel in self.channels:
            channel.submit(P.OP_RENDER)
        return tuple(r[2] for r in gather(self.channels, range(self.num_envs)))

    def close(self) -> None:
        """Close every session."""
        for channel in self.channels:
            channel.close()

