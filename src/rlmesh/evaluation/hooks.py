"""Hooks: code that watches a run (progress bars, loggers, recorders).

Subclass :class:`Hooks` and override what you need; pass one or a list as ``hooks=`` to
``rlmesh.run``, ``Model.run`` or ``rlmesh.evaluate``. Under ``evaluate`` hooks are called from
the endpoints' threads, one call at a time (rlmesh holds a lock around them).
"""

from __future__ import annotations

import threading
from typing import Any

from rlmesh.evaluation.results import EpisodeResult, RunResult

__all__ = ["Hooks"]


class Hooks:
    """No-op base class for run hooks."""

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        """An episode was reset (``index`` in the run's plan)."""

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        """Episode ``index`` took its ``step``-th step (1-based)."""

    def on_frame(self, index: int, frame: Any) -> None:
        """A ``render()`` frame of episode ``index``, after its reset and after every step.

        Rendering happens only while some hook overrides this method.
        """

    def wants_frame(self, index: int) -> bool:
        """Whether this hook wants a ``render()`` frame of episode ``index`` now.

        Asked (of hooks that override :meth:`on_frame`) before each frame is rendered; a hook
        with a frame budget (a live viewer) says no between its frames, and no frame is
        rendered unless some hook says yes. The default wants every frame.
        """
        return True

    def on_event(self, event: dict[str, Any]) -> None:
        """Something happened to the run as it played (``rlmesh.evaluate``).

        ``event`` is the dict that ``RunResult.events`` keeps: ``kind`` (``endpoint_failed``,
        ``endpoint_returned``, ``episode_failed``, ...), ``endpoint``, ``message``,
        ``episode`` and ``time``.
        """

    def on_episode_end(self, result: EpisodeResult) -> None:
        """An episode finished."""

    def on_run_end(self, result: RunResult) -> None:
        """The run finished (or was interrupted)."""


class HookList(Hooks):
    """Calls several hooks in order, one call at a time across threads."""

    def __init__(self, hooks: Any) -> None:
        given: list[Any] = ([] if hooks is None else [hooks]
                            if isinstance(hooks, Hooks) or hasattr(hooks, "relay")
                            else list(hooks))
        # (rlmesh.RunHooks, the reference's hooks, take part through a relay)
        hooks = [h.relay() if hasattr(h, "relay") and not isinstance(h, Hooks) else h
                 for h in given]
        for hook in hooks:
            if not isinstance(hook, Hooks):
                raise TypeError(f"hooks must be rlmesh.Hooks or rlmesh.RunHooks, not "
                                f"{type(hook).__qualname__}")
        self.hooks = list(hooks)
        self.watches_steps = any(type(h).on_step is not Hooks.on_step for h in self.hooks)
        filming = [h for h in self.hooks if type(h).on_frame is not Hooks.on_frame]
        self.watches_frames = bool(filming)
        self._budgeted = [h for h in filming if type(h).wants_frame is not Hooks.wants_frame]
        self._films_always = len(self._budgeted) < len(filming)
        self._lock = threading.Lock()

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        with self._lock:
            for hook in self.hooks:
                hook.on_episode_start(index, seed, observation, info, endpoint)

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any],
                timing: tuple[float, float] | None = None) -> None:
        """Tell every hook; those that take timings get ``(predict_ms, step_ms)`` too."""
        with self._lock:
            for hook in self.hooks:
                if timing is not None and getattr(hook, "takes_timing", False):
                    hook.on_step(index, step, action, observation, reward, terminated,
                                 truncated, info, timing=timing)
                else:
                    hook.on_step(index, step, action, observation, reward, terminated,
                                 truncated, info)

    def wants_frame(self, index: int) -> bool:
        """Whether some filming hook wants a frame of episode ``index`` now."""
        if self._films_always:
            return True
        with self._lock:
            return any([h.wants_frame(index) for h in self._budgeted])

    def on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            for hook in self.hooks:
                hook.on_event(event)

    def on_frame(self, index: int, frame: Any) -> None:
        with self._lock:
            for hook in self.hooks:
                hook.on_frame(index, frame)

    def on_episode_end(self, result: EpisodeResult) -> None:
        with self._lock:
            for hook in self.hooks:
                hook.on_episode_end(result)

    def on_run_end(self, result: RunResult) -> None:
        with self._lock:
            for hook in self.hooks:
                hook.on_run_end(result)
