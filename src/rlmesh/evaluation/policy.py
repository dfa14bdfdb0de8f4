"""What ``run`` and ``evaluate`` play with: a policy, mapping observations to actions.

:class:`Policy` is the machinery every model shares: ``predict`` (wrapped or overridden),
``predict_batch`` for vector env lanes, the lifecycle (``load``, ``reset``, ``close``), and
how the runners call it (``bind``, ``episode``, ``predictor``, ``batch``). The public
``rlmesh.Model`` (:mod:`rlmesh.models.model`) adds ``run`` and ``serve``; value backends
override ``predictor`` and ``batch`` to hand the model plain values or tensors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar, overload

from gymnasium import spaces as gs

from rlmesh.evaluation.adapting import adapt_one, end_episode
from rlmesh.evaluation.corner_set import Corners
from rlmesh.evaluation.corners import (
    Replay,
    chunk_step,
    first_lane,
    stack_one,
)
from rlmesh.evaluation.lifecycle import (
    EpisodeState,
    PredictContext,
    accepts_context,
    call_edge,
    reset_edge,
)
from rlmesh.values import coerce_action, coerce_actions, to_plain

__all__ = ["BatchPredictor", "Policy", "Predictor", "as_policy"]

Predictor = Callable[[Any], Any]
"""``observation -> action``."""
BatchPredictor = Callable[..., Any]
"""``(observations, episodes=None) -> actions``: ``episodes[k]`` is row ``k``'s episode."""


class Policy(Corners):
    """A policy for ``rlmesh.run``, ``rlmesh.evaluate`` and ``rlmesh.session``.

    Args:
        predict: ``predict(observation) -> action``; omit it when subclassing.
        predict_batch: ``predict_batch(observations) -> actions`` for a batch (vector env
            lanes); without it lanes call ``predict`` one by one.
        name: Shown in results (default: the callable's name or the class name).
    """

    plain = False
    """Whether observations are given (and actions accepted) as plain Python values."""
    copied_per_run = False
    """Whether a run works on a copy (a shared default instance, such as the random baseline,
    whose binding to one run's spaces must not leak into another's)."""
    spec: Any = None
    """What the model consumes and produces, for adapters (``None``: raw observations)."""
    execution_horizon = 1
    """Actions executed per predicted chunk (set by the runner; see ``rlmesh.run``)."""
    trust_entrypoints = False
    allow_fusion = False
    """Whether a served model may fuse concurrent sessions' observations into one batched
    call (needs a batch corner; see :mod:`rlmesh.models.fusion`)."""
    observation_space: gs.Space[Any] | None = None
    action_space: gs.Space[Any] | None = None
    # (class-level defaults: a subclass whose __init__ skips super().__init__() still works)
    adapter: Any = None
    """The adapter the runners resolved for the current env (``None``: raw observations)."""
    skips_adapters = False
    """Whether the model takes the env's raw values even from a tagged env (the random
    baseline)."""
    _on_reset: Callable[..., Any] | None = None
    _on_episode_end: Callable[..., Any] | None = None
    _on_close: Callable[[], Any] | None = None
    _episode: EpisodeState | None = None

    def __init__(self, source: Predictor | None = None, *, predict: Predictor | None = None,
                 predict_batch: Callable[[Any], Any] | None = None, name: str | None = None,
                 spec: Any = None, on_episode_end: Callable[..., Any] | None = None,
                 on_close: Callable[[], Any] | None = None,
                 trust_entrypoints: bool = False,
                 on_reset: Callable[..., Any] | None = None) -> None:
        if source is not None and predict is not None:
            raise TypeError("pass the predict callable once: Model(fn) or Model(predict=fn)")
        predict = source if source is not None else predict
        for label, value in (("predict", predict), ("predict_batch", predict_batch),
                             ("on_episode_end", on_episode_end), ("on_close", on_close),
                             ("on_reset", on_reset)):
            if value is not None and not callable(value):
                raise TypeError(f"{label} must be callable, not {type(value).__qualname__}")
        self._predict = predict
        self._predict_batch = predict_batch
        self.name = name or getattr(predict, "__qualname__", None) or type(self).__qualname__
        self.observation_space = None
        self.action_space = None
        if spec is not None:
            self.spec = spec
        self.trust_entrypoints = trust_entrypoints
        self._on_episode_end = on_episode_end
        self._on_close = on_close
        self._on_reset = on_reset
        self._episode = None

    def load(self, **binding: Any) -> None:
        """Called once before the first episode (the spaces are known by then).

        ``binding`` holds parameters a server binds (none locally).
        """

    def reset(self, seed: int | None = None) -> None:
        """Called at the start of every episode with the seed its env reset used.

        Override it as ``reset(self, seed=None)``. A model written for the reference rlmesh
        overrides ``reset(self)`` or ``reset(self, episode_id)`` instead, and is called when
        each episode *ends* (see :mod:`rlmesh.evaluation.lifecycle`).
        """

    def close(self) -> None:
        """Called once after the last episode."""

    # -- how the runners (and a model server) call it -----------------------------------------

    def bind(self, observation_space: gs.Space[Any], action_space: gs.Space[Any]) -> None:
        """Tell the model the (single-env) spaces it will act in."""
        self.observation_space = observation_space
        self.action_space = action_space

    def open_episode(self, seed: int | None) -> EpisodeState:
        """Start an episode that may run beside others (a lane, an endpoint's thread).

        A model that hears of episode starts gets :meth:`reset` here. Pair it with
        :meth:`close_episode`; predict for it through :meth:`predictor`.
        """
        if self._edge() == "start":
            self.reset(seed)
        if self._on_reset is not None:
            self._on_reset()
        return EpisodeState(seed)

    def start(self, seed: int | None) -> tuple[EpisodeState, Predictor]:
        """Open an episode and its predictor (a model overriding :meth:`episode` makes it)."""
        if type(self).episode is not Policy.episode:
            return EpisodeState(seed), self.episode(seed)
        episode = self.open_episode(seed)
        return episode, self.predictor(episode)

    def close_episode(self, episode: EpisodeState) -> None:
        """Tell a model that hears of episode ends that ``episode`` ended (naming it)."""
        if self._edge() == "end":
            call_edge(self._on_episode_end or self.reset, episode.episode_id)
        if self.adapter is not None:
            end_episode(self.adapter, id(episode))

    def episode(self, seed: int | None) -> Predictor:
        """The next episode of a one-at-a-time run (a session), and its predictor.

        Ends the previous episode first (:meth:`end_episode`).
        """
        self.end_episode()
        self._episode = self.open_episode(seed)
        return self.predictor(self._episode)

    def end_episode(self) -> None:
        """End the running episode of a one-at-a-time run, if any."""
        episode, self._episode = self._episode, None
        if episode is not None:
            self.close_episode(episode)

    def finish(self) -> None:
        """End the run: the last episode's end, then :meth:`close` (or ``on_close``)."""
        self.end_episode()
        (self._on_close or self.close)()

    def _edge(self) -> str:
        if self._on_episode_end is not None:
            return "end"
        return reset_edge(type(self).reset, Policy.reset)

    def context(self) -> PredictContext:
        """The context of the next predict of the running episode."""
        if self._episode is None:
            self._episode = EpisodeState(None)
        return self._episode.context()

    def _contextual(self, episode: EpisodeState | None) -> Predictor:
        """One-observation predict, handed a context wherever the model declares one."""
        ctx = episode.context if episode is not None else self.context
        call: Callable[..., Any] | None = self._predict
        if call is None and self._defines("predict"):
            call = self.predict
        if call is not None:
            return (lambda o: call(o, context=ctx())) if accepts_context(call) else self.predict
        if self.batched and self._batch_corner() is not None:
            return lambda o: first_lane(self.predict_lanes(stack_one(o), [episode]))
        if self.chunked and self._chunk_context():
            return lambda o: chunk_step(self._chunk(o, 1, ctx()), 0)
        return self.predict

    def predictor(self, episode: EpisodeState | None = None) -> Predictor:
        """:meth:`predict` as the runners call it: one numpy observation in, one action out.

        Values are converted here (:meth:`to_model`, :meth:`from_model`): plain values when
        :attr:`plain` is set (``rlmesh.Model``), tensors in the torch and JAX models; numpy
        values pass through otherwise. With an :attr:`execution_horizon` above 1 a model with
        a chunk corner replays each chunk, one action per call.
        """
        predict = self._contextual(episode)
        if self.execution_horizon > 1 and self.chunked:
            horizon = self.execution_horizon
            ctx = episode.context if episode is not None else self.context
            takes = self._chunk_context()
            predict = Replay(lambda observation: self._chunk(
                observation, horizon, ctx() if takes else None), horizon)
        if self.converts:
            inner, to_model, from_model = predict, self.to_model, self.from_model
            predict = lambda observation: from_model(inner(to_model(observation)))  # noqa: E731
        if self.adapter is not None:
            return adapt_one(predict, self.adapter, id(episode) if episode is not None else 0)
        return predict

    @property
    def converts(self) -> bool:
        """Whether observations and actions are converted for the model (not plain numpy)."""
        return self.plain or (type(self).to_model is not Policy.to_model)

    def to_model(self, observation: Any) -> Any:
        """A numpy observation as the model sees it (plain values for ``rlmesh.Model``)."""
        return to_plain(observation) if self.plain else observation

    def from_model(self, action: Any) -> Any:
        """The model's action as the env takes it."""
        space = self.action_space
        return coerce_action(space, action) if space is not None else action

    def batch(self) -> BatchPredictor:
        """The function the runners call with a numpy batch of observations.

        A vector env's lanes also pass the episode each row belongs to.
        """
        if not self.plain:
            return self.predict_lanes
        space = self.action_space
        return lambda observations, episodes=None: coerce_actions(
            space, self.predict_lanes(to_plain(observations), episodes))

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name}>"


PolicyT = TypeVar("PolicyT", bound=Policy)


@overload
def as_policy(policy: Any) -> Policy: ...


@overload
def as_policy(policy: Any, kind: type[PolicyT]) -> PolicyT: ...


def as_policy(policy: Any, kind: type[Policy] = Policy) -> Policy:
    """``policy`` as a ``kind`` (a :class:`Policy` by default): as is (or a copy), or wrapped.

    An instance of ``kind`` is used as is, or copied if it is a shared default
    (``copied_per_run``); a callable becomes ``kind(policy)``.

    Raises:
        TypeError: For anything else.
    """
    if isinstance(policy, kind):
        return copy.copy(policy) if policy.copied_per_run else policy
    if callable(policy):
        return kind(policy)
    raise TypeError(f"a policy is an rlmesh Model or a callable, not {type(policy).__qualname__}")
