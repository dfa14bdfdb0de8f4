"""``Model``: a policy that runs episodes and serves itself; the random baseline.

A model maps an observation to an action. Wrap a callable, ``rlmesh.numpy.Model(policy)``, or
subclass and override :meth:`~rlmesh.evaluation.policy.Policy.predict`, and optionally
``predict_batch`` (used for the lanes of a vector env), ``load`` (once, before the first
episode), ``reset`` (at the start of every episode, with its seed) and ``close``.

``rlmesh.numpy.Model`` (this class) sees numpy values; ``rlmesh.Model``
(:class:`rlmesh.backends.plain.PlainModel`) sees plain Python values, and the torch and JAX
faces have models that see tensors. All of them are this class: ``model.run(env)`` plays
episodes, ``model.serve(address)`` puts the model behind an address.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from rlmesh.authoring.describe import describe
from rlmesh.evaluation.lifecycle import EpisodeState
from rlmesh.evaluation.policy import Policy, Predictor, as_policy
from rlmesh.evaluation.results import RunResult
from rlmesh.evaluation.run import run
from rlmesh.evaluation.session import Session
from rlmesh.models.serve import DEFAULT_MAX_BATCH, ModelSource
from rlmesh.server.server import EnvServer

__all__ = ["RANDOM_SAMPLE", "Model", "RandomModel", "as_model"]


class Model(Policy):
    """A policy for ``rlmesh.run``, ``rlmesh.evaluate`` and ``rlmesh.session``.

    Args:
        source: ``predict(observation) -> action``; omit it when subclassing (``predict=``
            is the same argument).
        predict_batch: ``predict_batch(observations) -> actions`` for a batch (vector env
            lanes); without it lanes call ``predict`` one by one.
        name: Shown in results (default: the callable's name or the class name).
        spec: What the model consumes and produces, for adapters.
        on_episode_end: Called when each episode ends (with its id, if it takes one).
        on_close: Called instead of :meth:`close` when the run ends.
        trust_entrypoints: Allow ``module:callable`` entrypoints in the spec.
        on_reset: Called (with no arguments) as each episode starts, e.g. a custom adapter's
            ``reset``.
    """

    params: Any = None
    """The parameters the model may be bound with (a ``ParamSpec``; advisory)."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The model's ``rlmesh.describe.v1`` envelope, as ``rlmesh.describe(cls)`` gives it."""
        return describe(cls, kind="model")

    @property
    def device(self) -> Any:
        """Where observations go before ``predict``: torch and JAX models only (``None``)."""
        return None

    @device.setter
    def device(self, value: Any) -> None:
        if value is not None:
            raise ValueError(f"{type(self).__qualname__} has no device (numpy and plain "
                             "values live on the CPU); use rlmesh.torch.Model or "
                             "rlmesh.jax.Model for device placement")

    def run(self, env: Any = None, *, seeds: Sequence[int | None] | None = None,
            max_episodes: int | None = None, max_episode_steps: int | None = None,
            hooks: Any = None, env_or_address: Any = None, **options: Any) -> RunResult:
        """Run episodes on ``env`` (see :func:`rlmesh.run` for ``options``).

        ``env_or_address=`` is the reference rlmesh's name for ``env``.
        """
        return run(self, _target(env, env_or_address), seeds=seeds, max_episodes=max_episodes,
                   max_episode_steps=max_episode_steps, hooks=hooks, **options)

    def session(self, env: Any = None, *, env_or_address: Any = None,
                **options: Any) -> Session:
        """A :class:`rlmesh.Session` driving ``env`` with this model (:func:`rlmesh.session`)."""
        return Session(self, _target(env, env_or_address), **options)

    def serve(self, address: str = "127.0.0.1:5555", *, block: bool = True,
              max_batch: int = DEFAULT_MAX_BATCH, **server_options: Any) -> EnvServer:
        """Serve this model (``rlmesh.RemoteModel(address)`` uses it from anywhere).

        Args:
            address: Where to listen.
            block: Serve in this thread until interrupted (``False``: in the background).
            max_batch: Most lanes one batch request may hold (a larger one is refused with
                ``ProtocolError``; the session goes on).
            **server_options: More :class:`rlmesh.EnvServer` arguments (``token``,
                ``options``, ``tls``...).

        Returns:
            The server (already shut down when ``block``).
        """
        server = EnvServer(ModelSource(self, max_batch=max_batch), address, **server_options)
        if block:
            server.serve()
        else:
            server.start()
        return server


def _target(env: Any, env_or_address: Any) -> Any:
    """The env given either way (``env`` or ``env_or_address=``)."""
    if (env is None) == (env_or_address is None):
        raise TypeError("give the env once: model.run(env) or model.run(env_or_address=...)")
    return env if env is not None else env_or_address


class RandomModel(Model):
    """The random baseline: samples the action space, seeded per episode when a seed is given.

    With seeds, every episode's actions depend only on its seed, so results do not depend on
    which endpoint or lane ran it.
    """

    copied_per_run = True
    skips_adapters = True

    def __init__(self) -> None:
        super().__init__(name="random")

    def predict(self, observation: Any) -> Any:
        """A sample of the action space."""
        if self.action_space is None:
            raise RuntimeError("the random model is not bound to an action space yet")
        return self.action_space.sample()

    def predictor(self, episode: EpisodeState | None = None) -> Predictor:
        """For an episode, a sampler of its own, seeded with the episode's seed."""
        if episode is None:
            return self.predict
        if self.action_space is None:
            raise RuntimeError("the random model is not bound to an action space yet")
        space = copy.deepcopy(self.action_space)
        space.seed(episode.seed)
        return lambda observation: space.sample()


RANDOM_SAMPLE = RandomModel()
"""The random baseline: ``rlmesh.run(rlmesh.RANDOM_SAMPLE, env)``."""


def as_model(policy: Any) -> Model:
    """``policy`` as a :class:`Model`: a model as is, a callable wrapped (numpy values).

    Raises:
        TypeError: For anything else.
    """
    return as_policy(policy, Model)
