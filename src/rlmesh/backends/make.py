"""The machinery behind ``rlmesh.torch`` and ``rlmesh.jax``: framework values out, numpy in.

A backend is two functions, ``out(array, device)`` and ``into(value) -> numpy``; this module
applies them through nested values (dicts, tuples, lists; see :mod:`rlmesh.values`) and builds
the backend's ``RemoteEnv``, ``RemoteVectorEnv``, ``Model`` and ``RemoteModel`` on top of the
numpy ones. Every
array rlmesh decodes is freshly allocated for its reply, so a backend may share its memory
(``torch.from_numpy``) without ever exposing a buffer the library later reuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, SupportsFloat

import numpy as np

from rlmesh.client.env import RemoteEnv as NumpyRemoteEnv
from rlmesh.evaluation.policy import Predictor
from rlmesh.models.model import Model
from rlmesh.models.remote import RemoteModel as NumpyRemoteModel
from rlmesh.values import coerce_action, map_leaves
from rlmesh.vector.env import RemoteVectorEnv as NumpyRemoteVectorEnv

__all__ = ["ArrayOut", "ValueIn", "make_backend", "make_remote_model"]

ArrayOut = Callable[[np.ndarray[Any, Any], Any], Any]
"""``out(array, device)``: the framework's array (on ``device``; ``None``: its default)."""
ValueIn = Callable[[Any], Any]


def _arrays_out(value: Any, out: Callable[[np.ndarray[Any, Any]], Any]) -> Any:
    """Apply ``out`` to every numpy array inside ``value`` (scalars stay Python values)."""
    return map_leaves(value, lambda leaf: out(leaf) if isinstance(leaf, np.ndarray) else leaf,
                      into_graphs=False)


def _arrays_in(value: Any, into: ValueIn) -> Any:
    """Turn framework arrays inside an action back into numpy (other values unchanged)."""
    return map_leaves(value, into, into_graphs=False)


def make_backend(name: str, out: ArrayOut, into: ValueIn
                 ) -> tuple[type[NumpyRemoteEnv], type[NumpyRemoteVectorEnv], type[Model]]:
    """Build a backend's ``RemoteEnv``, ``RemoteVectorEnv`` and ``Model`` classes."""

    class OnDevice:
        """Adds ``device=`` to the numpy class it precedes, and the array conversion."""

        device: Any = None
        """Where arrays go (``None``: the framework's default); read at each conversion."""

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
            return _arrays_out(obs, self._out), info

        def step(self, action: Any, **kwargs: Any
                 ) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
            """Step with a numpy or framework action; the observation as framework arrays."""
            action = coerce_action(self.action_space, _arrays_in(action, into))
            obs, reward, terminated, truncated, info = super().step(action, **kwargs)
            return _arrays_out(obs, self._out), reward, terminated, truncated, info

    class RemoteVectorEnv(OnDevice, NumpyRemoteVectorEnv):
        __doc__ = (f"A remote vector env returning {name} batches (``device`` as for "
                   "RemoteEnv).")

        def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None
                  ) -> tuple[Any, dict[str, Any]]:
            """Reset the sub-envs; observations as framework arrays."""
            obs, info = super().reset(seed=seed, options=options)
            return _arrays_out(obs, self._out), info

        def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
            """Step every sub-env; observations, rewards and flags as framework arrays."""
            obs, rewards, terms, truncs, info = super().step(_arrays_in(actions, into))
            o = self._out
            return (_arrays_out(obs, o), o(rewards), o(terms), o(truncs), info)

    class BackendModel(OnDevice, Model):
        __doc__ = (f"A Model whose predict (and predict_batch) sees {name} observations and may "
                   f"return {name} actions.")

        def to_model(self, observation: Any) -> Any:
            return _arrays_out(observation, self._out)

        def from_model(self, action: Any) -> Any:
            return super().from_model(_arrays_in(action, into))

        def batch(self) -> Callable[..., Any]:
            return lambda observations, episodes=None: _arrays_in(
                self.predict_lanes(_arrays_out(observations, self._out), episodes), into)

    RemoteEnv.__name__ = RemoteEnv.__qualname__ = "RemoteEnv"
    RemoteVectorEnv.__name__ = RemoteVectorEnv.__qualname__ = "RemoteVectorEnv"
    BackendModel.__name__ = BackendModel.__qualname__ = "Model"
    return RemoteEnv, RemoteVectorEnv, BackendModel



def make_remote_model(name: str, out: ArrayOut, into: ValueIn) -> type[NumpyRemoteModel]:
    """Build a backend's ``RemoteModel``: framework values in and out of ``predict``."""

    class RemoteModel(NumpyRemoteModel):
        __doc__ = (f"A served model whose predict takes and returns {name} values "
                   "(``rlmesh.numpy.RemoteModel`` arguments, plus ``device``).")

        def __init__(self, *args: Any, device: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.device = device

        def _out(self, array: np.ndarray[Any, Any]) -> Any:
            return out(array, self.device)

        def predict(self, observation: Any) -> Any:
            """The served model's action for a numpy or framework observation."""
            return _arrays_out(super().predict(_arrays_in(observation, into)), self._out)

        def predict_batch(self, observations: Any) -> Any:
            """The served model's actions for a batch, in one request."""
            actions = super().predict_batch(_arrays_in(observations, into))
            return _arrays_out(actions, self._out)

        def predictor(self, episode: Any = None) -> Predictor:
            return lambda observation: NumpyRemoteModel.predict(self, observation)

        def batch(self) -> Callable[..., Any]:
            return lambda observations, episodes=None: NumpyRemoteModel.predict_batch(
                self, observations)

    RemoteModel.__name__ = RemoteModel.__qualname__ = "RemoteModel"
    return RemoteModel
