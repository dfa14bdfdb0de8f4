"""The shapes of env a server serves, and the old Gym step a served env may still return.

Three shapes: a single env (``observation_space``, ``action_space``, ``reset``, ``step``), a
Gymnasium ``VectorEnv``, and any object shaped like one: ``num_envs`` and the per-env
``single_observation_space`` and ``single_action_space`` (the reference API's
``VectorEnvLike``), whose batched spaces rlmesh builds when the object has none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector.utils import batch_space

__all__ = ["env_spaces", "five_tuple", "is_env_like", "is_vector_env"]


def is_vector_env(obj: Any) -> bool:
    """Whether ``obj`` is a vector env: ``num_envs`` and per-env spaces."""
    return hasattr(obj, "num_envs") and hasattr(obj, "single_observation_space")


def is_env_like(obj: Any) -> bool:
    """Whether ``obj`` has the surface rlmesh serves: spaces, ``reset`` and ``step``.

    A vector env may give only its per-env spaces (``single_observation_space`` and
    ``single_action_space``) besides ``num_envs``.
    """
    if not (hasattr(obj, "reset") and hasattr(obj, "step")):
        return False
    if hasattr(obj, "observation_space") and hasattr(obj, "action_space"):
        return True
    return is_vector_env(obj) and hasattr(obj, "single_action_space")


def env_spaces(env: Any) -> tuple[Any, Any]:
    """``(observation_space, action_space)`` of ``env``; a vector env's are batched.

    A vector env without them gets Gymnasium's batches of its per-env spaces.
    """
    observation_space = getattr(env, "observation_space", None)
    action_space = getattr(env, "action_space", None)
    if is_vector_env(env):
        n = int(env.num_envs)
        if observation_space is None:
            observation_space = batch_space(env.single_observation_space, n)
        if action_space is None:
            action_space = batch_space(env.single_action_space, n)
    return observation_space, action_space


def five_tuple(result: Any) -> tuple[Any, Any, Any, Any, Any]:
    """A step's result as Gymnasium's five values; old Gym's four are converted.

    ``(obs, reward, done, info)`` becomes ``(obs, reward, terminated, truncated, info)``: a
    ``done`` that ``info["TimeLimit.truncated"]`` marks as a time limit is a truncation,
    any other ``done`` a termination (Gymnasium's own conversion of the old API). For a
    vector env the flags are arrays and so is the time-limit mark, when present.

    Raises:
        ValueError: If ``result`` is neither five nor four values.
    """
    if isinstance(result, tuple) and len(result) == 5:
        return result
    if not isinstance(result, (tuple, list)) or len(result) != 4:
        count = len(result) if isinstance(result, (tuple, list)) else "not a tuple"
        raise ValueError(f"too many or not enough values to unpack (expected 5, got {count})")
    obs, reward, done, info = result
    limit = info.get("TimeLimit.truncated", False) if isinstance(info, dict) else False
    ended = np.asarray(done, dtype=bool)
    truncated = ended & np.asarray(limit, dtype=bool)
    terminated = ended & ~truncated
    if ended.ndim == 0:
        return obs, reward, bool(terminated), bool(truncated), info
    return obs, reward, terminated, truncated, info
