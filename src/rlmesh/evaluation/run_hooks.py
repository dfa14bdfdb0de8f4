"""``RunHooks`` and ``StepEvent``: the reference rlmesh's way of watching a run.

A :class:`RunHooks` subclass overrides what it wants to observe: the run's start, each
episode's start, every step (as one :class:`StepEvent`), each episode's end and the run's end.
Every default does nothing, an exception in a hook stops the run with that exception, and
hooks never change the result. Pass one as ``hooks=`` to ``rlmesh.run``, ``Model.run``,
``rlmesh.session`` or ``rlmesh.evaluate``, alone or in a list with :class:`rlmesh.Hooks`
(rlmesh's own hooks, which see the same run through other signatures).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlmesh.evaluation.hooks import Hooks
from rlmesh.evaluation.results import EpisodeResult, RunResult

__all__ = ["RunHooks", "StepEvent"]


@dataclasses.dataclass(frozen=True)
class StepEvent:
    """One step of one episode, as :meth:`RunHooks.on_step` sees it.

    Attributes:
        episode: The episode's index in the run's plan.
        seed: The seed its reset used.
        step: The step's number in its episode (1-based).
        observation: The observation the step returned.
        action: The action the step took.
        reward: Its reward.
        terminated: Whether this step ended the episode (the env said so).
        truncated: Whether this step cut the episode short.
        info: The step's info dict.
        predict_ms: Milliseconds the model took for this step's action (``None`` where the
            runner does not time single steps).
        step_ms: Milliseconds the env took for this step (likewise).
        read: Reads roles off :attr:`observation` (needs ``rlmesh.adapters``; ``None``).
    """

    episode: int
    seed: int | None
    step: int
    observation: Any
    action: Any
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    predict_ms: float | None = None
    step_ms: float | None = None
    read: Any = None

    @property
    def done(self) -> bool:
        """Whether the episode ended with this step."""
        return self.terminated or self.truncated


class RunHooks:
    """No-op base class: override the events you want to observe."""

    def on_run_start(self) -> None:
        """The run is about to play its first episode."""

    def on_episode_start(self, index: int, seed: int | None) -> None:
        """Episode ``index`` was reset with ``seed``."""

    def on_step(self, event: StepEvent) -> None:
        """A step was taken."""

    def on_episode_end(self, result: EpisodeResult) -> None:
        """An episode finished."""

    def on_run_end(self, episodes: tuple[EpisodeResult, ...]) -> None:
        """The run finished (always called once, with the finished episodes)."""

    def relay(self) -> Hooks:
        """These hooks as :class:`rlmesh.Hooks` (how the runners call them)."""
        steps = type(self).on_step is not RunHooks.on_step
        return _StepRelay(self) if steps else _Relay(self)


class _Relay(Hooks):
    """Lets a :class:`RunHooks` watch a run through the :class:`Hooks` calls."""

    def __init__(self, hooks: RunHooks) -> None:
        self.hooks = hooks
        self._started = False
        self.seeds: dict[int, int | None] = {}

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.hooks.on_run_start()

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        self._start()
        self.seeds[index] = seed
        self.hooks.on_episode_start(index, seed)

    def on_episode_end(self, result: EpisodeResult) -> None:
        self.hooks.on_episode_end(result)

    def on_run_end(self, result: RunResult) -> None:
        self._start()
        self.hooks.on_run_end(tuple(result.episodes))


class _StepRelay(_Relay):
    """A relay that reports steps too (steps are reported only when someone watches)."""

    takes_timing = True
    """The runner passes each step's ``(predict_ms, step_ms)`` where it times them."""

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any],
                timing: tuple[float, float] | None = None) -> None:
        predict_ms, step_ms = timing if timing is not None else (None, None)
        self.hooks.on_step(StepEvent(index, self.seeds.get(index), step, observation, action,
                                     reward, terminated, truncated, info, predict_ms, step_ms))
