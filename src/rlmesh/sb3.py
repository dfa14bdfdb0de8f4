"""Stable-Baselines3: train on rlmesh envs with no change to SB3.

A single :class:`rlmesh.numpy.RemoteEnv` is a ``gymnasium.Env``, so SB3 takes it as is::

    model = PPO("MlpPolicy", RemoteEnv("127.0.0.1:5555")).learn(50_000)

A :class:`rlmesh.numpy.RemoteVectorEnv` (or any Gymnasium vector env) goes through
:func:`to_sb3`, which speaks SB3's ``VecEnv`` interface: after an episode ends, the returned
observation is already the next episode's first (the ended lane is reset at once, whatever
the vector env's autoreset mode) and ``info["terminal_observation"]`` holds the last one::

    venv = rlmesh.sb3.to_sb3(RemoteVectorEnv("127.0.0.1:5555"))
    model = PPO("MlpPolicy", venv).learn(50_000)

``to_sb3`` wraps the adapter in SB3's ``VecMonitor``, so SB3 logs episode returns and lengths
(``rollout/ep_rew_mean``) and ``evaluate_policy`` finds its monitor, as with ``make_vec_env``.

Needs Stable-Baselines3: the ``sb3`` extra (see ``docs/install.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

try:
    from stable_baselines3.common.vec_env import VecEnv, VecMonitor
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    from rlmesh.extras import missing_extra

    raise missing_extra("rlmesh.sb3", "Stable-Baselines3", "sb3") from exc

from rlmesh.vector.batching import lane_info, pick

__all__ = ["SB3VecEnv", "to_sb3"]


class SB3VecEnv(VecEnv):  # type: ignore[misc]
    """A Gymnasium vector env behind SB3's ``VecEnv`` interface.

    Args:
        env: The vector env (``num_envs``, ``single_observation_space``,
            ``single_action_space``, ``reset(seed=, options=)`` with ``reset_mask``).
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        super().__init__(int(env.num_envs), env.single_observation_space,
                         env.single_action_space)
        mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode")
        self._same_step = str(getattr(mode, "value", mode)) == "SameStep"
        self._actions: Any = None

    def reset(self) -> Any:
        """Reset every sub-env (with the seeds given to ``seed()``, once)."""
        seeds = list(self._seeds)
        obs, infos = self.env.reset(seed=seeds if any(s is not None for s in seeds) else None,
                                    options=self._options[0] if self._options and
                                    self._options[0] else None)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [lane_info(infos, k) for k in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray[Any, Any]) -> None:
        """Remember the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> tuple[Any, np.ndarray[Any, Any], np.ndarray[Any, Any],
                                 list[dict[str, Any]]]:
        """Step every sub-env; reset the ones whose episode ended."""
        obs, rewards, terms, truncs, infos = self.env.step(self._actions)
        terms, truncs = np.asarray(terms, bool), np.asarray(truncs, bool)
        dones = terms | truncs
        lanes = [lane_info(infos, k) for k in range(self.num_envs)]
        if dones.any():
            if self._same_step:  # the vector env reset them already; the last obs is kept
                final_obs = infos.get("final_obs")
                final_info = infos.get("final_info")
                for k in map(int, np.flatnonzero(dones)):
                    if final_info is not None:
                        lanes[k].update(lane_info(final_info, k))
                    lanes[k]["terminal_observation"] = pick(final_obs, k)
            else:
                for k in map(int, np.flatnonzero(dones)):
                    lanes[k]["terminal_observation"] = _copy(pick(obs, k))
                obs, fresh = self.env.reset(options={"reset_mask": dones})
                for k in map(int, np.flatnonzero(dones)):
                    self.reset_infos[k] = lane_info(fresh, k)
            for k in map(int, np.flatnonzero(dones)):
                lanes[k]["TimeLimit.truncated"] = bool(truncs[k] and not terms[k])
        return obs, np.asarray(rewards, dtype=np.float32), dones, lanes

    def close(self) -> None:
        """Close the vector env."""
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The vector env's attribute, once per requested sub-env."""
        return [getattr(self.env, attr_name, None) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute on the vector env itself."""
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of the vector env (once; its result for every requested sub-env)."""
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """Sub-envs behind rlmesh are opaque: never reported as wrapped."""
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray[Any, Any] | None]:
        """The sub-envs' frames, from the vector env's ``render()``."""
        frames = self.env.render()
        return list(frames) if frames is not None else [None] * self.num_envs

    def _indices(self, indices: Any) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)


def to_sb3(env: Any, *, monitor: bool = True) -> VecEnv:
    """Wrap a Gymnasium vector env (e.g. a ``RemoteVectorEnv``) for Stable-Baselines3.

    Args:
        env: The vector env.
        monitor: Record episode statistics with SB3's ``VecMonitor`` (``info["episode"]``
            with return, length and time), which SB3's logger and ``evaluate_policy`` read;
            ``False`` returns the bare :class:`SB3VecEnv`.
    """
    adapter = SB3VecEnv(env)
    return VecMonitor(adapter) if monitor else adapter


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return np.array(value, copy=True)
