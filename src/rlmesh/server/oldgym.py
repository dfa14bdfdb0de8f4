"""``OldGymEnv``: an env of the old ``gym`` package (0.21 to 0.26) as a Gymnasium env.

rlmesh serves Gymnasium's API. An env written for the old ``gym`` package speaks one of two
older dialects, and this wrapper translates either on the server side, so that every client
sees an ordinary Gymnasium env:

* **gym 0.26** (``reset(seed=, options=)`` returns ``(obs, info)``, ``step`` five values)
  differs from Gymnasium in its space classes only: they are converted
  (:func:`~rlmesh.server.oldgym_spaces.gymnasium_space`).
* **gym 0.21 to 0.25** (``reset()`` returns the observation, ``step`` four values, seeding
  through ``env.seed``): ``reset(seed=s)`` calls ``env.seed(s)`` first, and a ``done`` that
  ``info["TimeLimit.truncated"]`` marks as a time limit becomes ``truncated``, any other
  ``done`` ``terminated`` (:func:`~rlmesh.server.shapes.five_tuple`, the one place rlmesh
  converts an old step). ``render()`` calls ``env.render(mode=render_mode)``.

The spec id becomes ``gym/<id>`` (so a client can tell it from Gymnasium's env of the same
name), and ``metadata["gym_version"]`` says which release runs it.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import gymnasium
from gymnasium.envs.registration import EnvSpec

from rlmesh.server.oldgym_spaces import gymnasium_space
from rlmesh.server.shapes import five_tuple
from rlmesh.server.sources import spec_fields

__all__ = ["SPEC_NAMESPACE", "OldGymEnv", "gym_release", "installed_gym_version"]

SPEC_NAMESPACE = "gym"
"""The namespace an old env's spec id is given: ``gym/CartPole-v1``."""

_FIRST_NEW_API = (0, 26)
"""The first ``gym`` release with ``reset(seed=)`` returning ``(obs, info)`` and 5-tuple steps."""


def installed_gym_version() -> str:
    """The version of the imported ``gym`` package (``"unknown"`` if it is not loaded)."""
    module = sys.modules.get("gym")
    version = getattr(module, "__version__", None)
    return version if isinstance(version, str) else "unknown"


def gym_release(text: str) -> tuple[int, ...]:
    """``"0.26.2"`` as ``(0, 26)``: the release, for comparisons."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


class OldGymEnv(gymnasium.Env[Any, Any]):
    """Serves an env of the old ``gym`` package through Gymnasium's API.

    Args:
        env: The old env (from ``gym.make`` or built directly), wrappers included.
        gym_version: The ``gym`` release the env comes from; defaults to the imported
            ``gym`` package's. Releases before 0.26 get the old dialect's translation.
        render_mode: For gym before 0.26 (where the mode is given to ``render``): the
            mode ``render()`` asks for. From 0.26 on, the env's own ``render_mode``.

    Example::

        import gym
        from rlmesh.server.oldgym import OldGymEnv

        env = OldGymEnv(gym.make("CartPole-v1"))
        obs, info = env.reset(seed=0)
    """

    def __init__(self, env: Any, *, gym_version: str | None = None,
                 render_mode: str | None = None) -> None:
        self.gym_env = env
        """The wrapped env of the old package."""
        self.gym_version = gym_version or installed_gym_version()
        """The ``gym`` release the env comes from."""
        self._new_api = gym_release(self.gym_version) >= _FIRST_NEW_API
        self.observation_space = gymnasium_space(env.observation_space)
        self.action_space = gymnasium_space(env.action_space)
        self.render_mode = getattr(env, "render_mode", None) if self._new_api else render_mode
        self.metadata = self._metadata(env)
        self.spec = self._spec(getattr(env, "spec", None))

    def _metadata(self, env: Any) -> dict[str, Any]:
        metadata = dict(getattr(env, "metadata", None) or {})
        if "render_modes" not in metadata and "render.modes" in metadata:
            metadata["render_modes"] = list(metadata.pop("render.modes"))
        if "render_fps" not in metadata and "video.frames_per_second" in metadata:
            metadata["render_fps"] = metadata.pop("video.frames_per_second")
        metadata["gym_version"] = self.gym_version
        return metadata

    @staticmethod
    def _spec(spec: Any) -> EnvSpec | None:
        fields = spec_fields(spec)  # (what the contract reads of any spec, checked)
        if fields is None:
            return None
        return EnvSpec(
            id=f"{SPEC_NAMESPACE}/{fields['id'].rpartition('/')[2]}", entry_point=None,
            reward_threshold=fields["reward_threshold"],
            nondeterministic=fields["nondeterministic"],
            max_episode_steps=fields["max_episode_steps"])

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the old env, seeding it first when ``seed`` is given.

        Raises:
            ValueError: If ``options`` are given to an env of gym before 0.26, whose
                ``reset`` takes none.
        """
        super().reset(seed=seed)
        if self._new_api:
            obs, info = self.gym_env.reset(seed=seed, options=options)
            return obs, dict(info)
        if options:
            raise ValueError(f"reset options need gym>=0.26; this env runs gym "
                             f"{self.gym_version}, whose reset takes none")
        if seed is not None:
            self.gym_env.seed(seed)
        return self.gym_env.reset(), {}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step the old env; an old 4-value step is split into terminated and truncated."""
        obs, reward, terminated, truncated, info = five_tuple(self.gym_env.step(action))
        return obs, reward, terminated, truncated, info

    def render(self) -> Any:
        """The old env's frame (gym before 0.26: ``render(mode=render_mode)``)."""
        if self._new_api:
            return self.gym_env.render()
        if self.render_mode is None:
            return None
        return self.gym_env.render(mode=self.render_mode)

    def close(self) -> None:
        """Close the old env."""
        self.gym_env.close()
        super().close()

    def __repr__(self) -> str:
        return f"OldGymEnv({self.gym_env!r}, gym {self.gym_version})"
