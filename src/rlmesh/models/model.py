"""Policies: ``Model`` wraps a ``predict`` callable (or is subclassed) and runs episodes.

A model maps an observation to an action. Wrap a callable, ``rlmesh.numpy.Model(policy)``, or
subclass and override :meth:`Model.predict`, and optionally :meth:`Model.predict_batch`
(used for the lanes of a vector env), :meth:`Model.load` (once, before the first episode),
:meth:`Model.reset` (at the start of every episode, with its seed) and :meth:`Model.close`.

``rlmesh.numpy.Model`` sees numpy values; ``rlmesh.Model`` sees plain Python values (lists,
ints, floats), like ``rlmesh.RemoteEnv``, and may return plain actions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh.backends.plain import from_plain, to_plain

if TYPE_CHECKING:
    from rlmesh.evaluation.hooks import Hooks
    from rlmesh.evaluation.results import RunResult
    from rlmesh.server.server import EnvServer

__all__ = ["RANDOM_SAMPLE", "Model", "PlainModel", "RandomModel"]

Predictor = Callable[[Any], Any]


class Model:
    """A policy for ``rlmesh.run``, ``rlmesh.evaluate`` and ``rlmesh.session``.

    Args:
        predict: ``predict(observation) -> action``; omit it when subclassing.
        predict_batch: ``predict_batch(observations) -> actions`` for a batch (vector env
            lanes); without it lanes call ``predict`` one by one.
        name: Shown in results (default: the callable's name or the class name).
    """

    plain = False
    """Whether observations are given (and actions accepted) as plain Python values."""

    def __init__(self, predict: Predictor | None = None, *,
                 predict_batch: Callable[[Any], Any] | None = None,
                 name: str | None = None) -> None:
        if predict is not None and not callable(predict):
            raise TypeError(f"predict must be callable, not {type(predict).__qualname__}")
        self._predict = predict
        self._predict_batch = predict_batch
        self.name = name or getattr(predict, "__qualname__", None) or type(self).__qualname__
        self.observation_space: gs.Space[Any] | None = None
        self.action_space: gs.Space[Any] | None = None

    # -- what a subclass overrides ------------------------------------------------------------

    def predict(self, observation: Any) -> Any:
        """The action for ``observation``."""
        if self._predict is None:
            raise NotImplementedError(
                f"{type(self).__qualname__} has no predict: pass a callable to Model(...) or "
                "override predict()")
        return self._predict(observation)

    def predict_batch(self, observations: Any) -> Any:
        """Actions for a batch of observations (the first axis is the lane)."""
        if self._predict_batch is not None:
            return self._predict_batch(observations)
        return np.stack([np.asarray(self.predict(o)) for o in _lanes(observations)])

    @property
    def batched(self) -> bool:
        """Whether a batch predictor is defined (given, or :meth:`predict_batch` overridden)."""
        return (self._predict_batch is not None
                or type(self).predict_batch is not Model.predict_batch)

    def batch(self) -> Callable[[Any], Any]:
        """The function the runners call with a numpy batch of observations."""
        if self.plain:
            space = self.action_space
            return lambda observations: batch_from_plain(
                space, self.predict_batch(to_plain(observations)))
        return self.predict_batch

    def load(self) -> None:
        """Called once before the first episode (the spaces are known by then)."""

    def reset(self, seed: int | None = None) -> None:
        """Called at the start of every episode with the seed its env reset used."""

    def close(self) -> None:
        """Called once after the last episode."""

    # -- used by the runners --------------------------------------------------------------

    def bind(self, observation_space: gs.Space[Any], action_space: gs.Space[Any]) -> None:
        """Tell the model the (single-env) spaces it will act in."""
        self.observation_space = observation_space
        self.action_space = action_space

    def episode(self, seed: int | None) -> Predictor:
        """Start an episode: the function that maps its observations to actions.

        The default calls :meth:`reset` and returns :meth:`predictor`; a model with
        per-episode state may return a closure.
        """
        self.reset(seed)
        return self.predictor()

    def predictor(self) -> Predictor:
        """:meth:`predict` as the runners (and a model server) call it.

        It takes one numpy observation and converts it to the values this model sees
        (plain values for ``rlmesh.Model``, tensors for ``rlmesh.torch.Model``...), and
        converts the action back.
        """
        if not self.plain:
            return self.predict
        space = self.action_space

        def predict_plain(observation: Any) -> Any:
            action = self.predict(to_plain(observation))
            return from_plain(space, action) if space is not None else action

        return predict_plain

    def run(self, env: Any, *, seeds: Sequence[int | None] | None = None,
            max_episodes: int | None = None, max_episode_steps: int | None = None,
            hooks: Hooks | Sequence[Hooks] | None = None) -> RunResult:
        """Run episodes on ``env`` (see :func:`rlmesh.run`)."""
        from rlmesh.evaluation.run import run

        return run(self, env, seeds=seeds, max_episodes=max_episodes,
                   max_episode_steps=max_episode_steps, hooks=hooks)

    def serve(self, address: str = "127.0.0.1:5555", *, block: bool = True,
              **server_options: Any) -> EnvServer:
        """Serve this model (``rlmesh.RemoteModel(address)`` uses it from anywhere).

        Args:
            address: Where to listen.
            block: Serve in this thread until interrupted (``False``: in the background).
            **server_options: More :class:`rlmesh.EnvServer` arguments (``token``,
                ``options``, ``tls``...).

        Returns:
            The server (already shut down when ``block``).
        """
        from rlmesh.server.server import EnvServer

        server = EnvServer(self, address, **server_options)
        if block:
            server.serve()
        else:
            server.start()
        return server

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name}>"


class PlainModel(Model):
    """A :class:`Model` that sees plain Python values (exposed as ``rlmesh.Model``)."""

    plain = True


class RandomModel(Model):
    """The random baseline: samples the action space, seeded per episode when a seed is given.

    With seeds, every episode's actions depend only on its seed, so results do not depend on
    which endpoint or lane ran it.
    """

    def __init__(self) -> None:
        super().__init__(name="random")

    def predict(self, observation: Any) -> Any:
        """A sample of the action space."""
        if self.action_space is None:
            raise RuntimeError("the random model is not bound to an action space yet")
        return self.action_space.sample()

    def episode(self, seed: int | None) -> Predictor:
        """A sampler of its own, seeded with the episode's seed."""
        if self.action_space is None:
            raise RuntimeError("the random model is not bound to an action space yet")
        space = copy.deepcopy(self.action_space)
        space.seed(seed)
        return lambda observation: space.sample()


RANDOM_SAMPLE = RandomModel()
"""The random baseline: ``rlmesh.run(rlmesh.RANDOM_SAMPLE, env)``."""


def as_model(policy: Any) -> Model:
    """``policy`` as a :class:`Model`: a model as is, a callable wrapped (numpy values)."""
    if isinstance(policy, Model):
        return copy.copy(policy) if policy is RANDOM_SAMPLE else policy
    if callable(policy):
        return Model(policy)
    raise TypeError(f"a policy is an rlmesh Model or a callable, not {type(policy).__qualname__}")


def batch_from_plain(space: gs.Space[Any] | None, actions: Any) -> Any:
    """A plain batch of actions (lists) as arrays of the single action space's dtype."""
    if isinstance(space, (gs.Box, gs.Discrete, gs.MultiDiscrete, gs.MultiBinary)):
        if isinstance(actions, (list, tuple)) or (isinstance(actions, np.ndarray)
                                                  and actions.dtype != space.dtype):
            return np.asarray(actions, dtype=space.dtype)
        return actions
    if isinstance(space, gs.Dict) and isinstance(actions, dict):
        return {k: batch_from_plain(space.spaces.get(k), v) for k, v in actions.items()}
    if isinstance(space, gs.Tuple) and isinstance(actions, (list, tuple)) and len(
            actions) == len(space.spaces):
        return tuple(batch_from_plain(s, v) for s, v in zip(space.spaces, actions, strict=True))
    return actions


def _lanes(observations: Any) -> list[Any]:
    """Split a batched observation (array, dict or tuple of batches) into per-lane values."""
    if isinstance(observations, dict):
        keys = list(observations)
        parts = [_lanes(observations[k]) for k in keys]
        return [dict(zip(keys, values, strict=True)) for values in zip(*parts, strict=True)]
    if isinstance(observations, tuple):
        parts = [_lanes(v) for v in observations]
        return [tuple(values) for values in zip(*parts, strict=True)]
    return list(observations)
