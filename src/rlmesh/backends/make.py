"""The machinery behind ``rlmesh.torch`` and ``rlmesh.jax``: framework values out, numpy in.

A backend is two functions, ``out(array, device)`` and ``into(value) -> numpy``;
this module applies them through nested values (dicts, tuples, lists) and builds the
backend's ``RemoteEnv``, ``RemoteVectorEnv`` and ``Model`` on top of the numpy ones. Every
array rlmesh decodes is freshly allocated for its reply, so a backend may share its memory
(``torch.from_numpy``) without ever exposing a buffer the library later reuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces as gs

from rlmesh.client.env import NumpyRemoteEnv
from rlmesh.models.model import Model, Predictor
from rlmesh.vector.env import RemoteVectorEnv as NumpyRemoteVectorEnv

ArrayOut = Callable[[np.ndarray[Any, Any], Any], Any]
"""``out(array, device)``: the framework's array (on ``device``; ``None``: its default)."""
ValueIn = Callable[[Any], Any]


def convert_out(value: Any, out: Callable[[np.ndarray[Any, Any]], Any]) -> Any:
    """Apply ``out`` to every numpy array inside ``value`` (scalars stay Python values)."""
    if isinstance(value, np.ndarray):
        return out(value)
    if isinstance(value, dict):
        return {k: convert_out(v, out) for k, v in value.items()}
    if isinstance(value, tuple) and not isinstance(value, gs.GraphInstance):
        return tuple(convert_out(v, out) for v in value)
    if isinstance(value, list):
        return [convert_out(v, out) for v in value]
    return value


def convert_in(value: Any, into: ValueIn) -> Any:
    """Turn framework arrays inside an action back into numpy (other values unchanged)."""
    if isinstance(value, dict):
        return {k: convert_in(v, into) for k, v in value.items()}
    if isinstance(value, tuple) and not isinstance(value, gs.GraphInstance):
        return tuple(convert_in(v, into) for v in value)
    if isinstance(value, list):
        return [convert_in(v, into) for v in value]
    return into(value)


def action_for(space: gs.Space[Any] | None, action: Any) -> Any:
    """A numpy action, as the space expects (0-d arrays of Discrete become ints)."""
    if isinstance(space, gs.Discrete) and isinstance(action, np.ndarray) and action.ndim == 0:
        return action.astype(space.dtype)[()]
    if isinstance(space, (gs.Box, gs.MultiDiscrete, gs.MultiBinary)) and isinstance(
            action, np.ndarray) and action.dtype != space.dtype:
        return action.astype(space.dtype)
    return action


def make_backend(name: str, out: ArrayOut, into: ValueIn
                 ) -> tuple[type[NumpyRemoteEnv], type[NumpyRemoteVectorEnv], type[Model]]:
    """Build a backend's ``RemoteEnv``, ``RemoteVectorEnv`` and ``Model`` classes."""

    class OnDevice:
        """Adds ``device=`` to the numpy class it precedes, and the array conversion."""

        def __init__(self, *args: Any, device: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.device = device

        def _out(self, array: np.ndarray[Any, Any]) -> Any:
            return out(array, self.device)

    class RemoteEnv(OnDevice, NumpyRemoteEnv):
        __doc__ = (f"A remote env returning {name} arrays (``rlmesh.numpy.RemoteEnv`` "
                   f"arguments, plus ``device``); actions may be {name} arrays.")

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,
                  **kwargs: Any) -> tuple[Any, dict[str, Any]]:
            """Reset; the observation as {name} arrays."""
            obs, info = super().reset(seed=seed, options=options, **kwargs)
            return convert_out(obs, self._out), info

        def step(self, action: Any, **kwargs: Any
                 ) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
            """Step with a numpy or framework action; the observation as framework arrays."""
            action = action_for(self.action_space, convert_in(action, into))
            obs, reward, terminated, truncated, info = super().step(action, **kwargs)
            return convert_out(obs, self._out), reward, terminated, truncated, info

    class RemoteVectorEnv(OnDevice, NumpyRemoteVectorEnv):
        __doc__ = (f"A remote vector env returning {name} batches (``device`` as for "
                   "RemoteEnv).")

        def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None
                  ) -> tuple[Any, dict[str, Any]]:
            """Reset the sub-envs; observations as framework arrays."""
            obs, info = super().reset(seed=seed, options=options)
            return convert_out(obs, self._out), info

        def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
            """Step every sub-env; observations, rewards and flags as framework arrays."""
            obs, rewards, terms, truncs, info = super().step(convert_in(actions, into))
            o = self._out
            return (convert_out(obs, o), o(rewards), o(terms), o(truncs), info)

    class BackendModel(OnDevice, Model):
        __doc__ = (f"A Model whose predict (and predict_batch) sees {name} observations and may "
                   f"return {name} actions.")

        def predictor(self) -> Predictor:
            space = self.action_space

            def predict(observation: Any) -> Any:
                action = self.predict(convert_out(observation, self._out))
                return action_for(space, convert_in(action, into))

            return predict

        def batch(self) -> Callable[[Any], Any]:
            return lambda observations: convert_in(
                self.predict_batch(convert_out(observations, self._out)), into)

    RemoteEnv.__name__ = RemoteEnv.__qualname__ = "RemoteEnv"
    RemoteVectorEnv.__name__ = RemoteVectorEnv.__qualname__ = "RemoteVectorEnv"
    BackendModel.__name__ = BackendModel.__qualname__ = "Model"
    return RemoteEnv, RemoteVectorEnv, BackendModel

