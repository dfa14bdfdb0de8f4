"""What the viewer's displays share with the run: the HUD numbers and the viewer's controls.

The run's thread writes the episode, step and rewards; the displays (the terminal, the web
page) read a :meth:`ViewerState.snapshot` and ask for ``skip``, ``quit`` or another source
with :meth:`ViewerState.request`. The run's thread takes those requests at its next step. A
display that breaks records its error with :meth:`ViewerState.fail`; the run's thread reports
it (one warning) and turns the viewer off.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["ACTIONS", "ViewerState"]

ACTIONS = ("skip", "quit", "next", "source")
"""What a display may ask for: skip the episode, quit the run, the next source, a source."""


class ViewerState:
    """The HUD and controls of one live viewer (thread-safe).

    Args:
        sources: The names of the sources offered, in cycling order.
        current: The index of the source shown first.
        fps: The viewer's frame budget (frames per second at most).
    """

    def __init__(self, sources: list[str], current: int = 0, fps: float = 10.0) -> None:
        self._lock = threading.Lock()
        self.sources = list(sources)
        self._current = current
        self.fps = fps
        self.episode = -1
        self.step = 0
        self.reward = 0.0
        self.total = 0.0
        self.done = False
        self._skip = False
        self._quit = False
        self.error: BaseException | None = None

    @property
    def source(self) -> str | None:
        """The name of the source shown now (``None`` when there is none)."""
        with self._lock:
            return self.sources[self._current] if self.sources else None

    def episode_started(self) -> None:
        """A new episode began: its step count and return start at zero."""
        with self._lock:
            self.episode += 1
            self.step, self.reward, self.total, self.done = 0, 0.0, 0.0, False
            self._skip = False

    def stepped(self, reward: float, step: int, done: bool) -> None:
        """The run took a step with ``reward`` (``step``: the episode's steps so far)."""
        with self._lock:
            self.step, self.reward, self.done = step, reward, done
            self.total += reward

    def request(self, action: str, name: str | None = None) -> bool:
        """Ask for ``action`` (one of :data:`ACTIONS`); whether it was understood.

        ``"source"`` selects the source called ``name``; ``"next"`` the one after the current.
        """
        with self._lock:
            if action == "skip":
                self._skip = True
            elif action == "quit":
                self._quit = True
            elif action == "next" and self.sources:
                self._current = (self._current + 1) % len(self.sources)
            elif action == "source" and name in self.sources:
                self._current = self.sources.index(name)
            else:
                return False
            return True

    def take_skip(self) -> bool:
        """Whether a skip was asked for since the last call (the request is consumed)."""
        with self._lock:
            skip, self._skip = self._skip, False
            return skip

    @property
    def quitting(self) -> bool:
        """Whether quitting the run was asked for."""
        return self._quit

    def fail(self, error: BaseException) -> None:
        """A display broke with ``error`` (the first error is kept)."""
        with self._lock:
            if self.error is None:
                self.error = error

    def snapshot(self) -> dict[str, Any]:
        """The HUD as plain values (what ``/state.json`` answers)."""
        with self._lock:
            return {
                "episode": self.episode, "step": self.step, "reward": self.reward,
                "return": self.total, "done": self.done,
                "source": self.sources[self._current] if self.sources else None,
                "sources": list(self.sources), "fps": self.fps, "quit": self._quit,
            }
