"""The live viewer the runners drive: frames within a budget, controls, best effort.

The runner (``rlmesh.run``, a ``Session``) calls :meth:`LiveViewer.start` once the env is
open, :meth:`~LiveViewer.on_reset` and :meth:`~LiveViewer.on_step` as it plays, asks
:meth:`~LiveViewer.should_skip` and :meth:`~LiveViewer.should_quit` after each step, and
:meth:`~LiveViewer.close` at the end. A frame is produced (``render()`` called, or the image
read off the observation) only when ``1/fps`` seconds have passed since the last one; it goes
into a :class:`~rlmesh.viewer.frames.LatestFrame` slot and the displays draw or encode it on
their own threads. The run never waits for them: frames nobody showed yet are replaced.

Nothing the viewer does can break the run: the first error (a port in use, a source that
raises, a display that breaks) is one :class:`~rlmesh.RLMeshWarning`, and the viewer turns
itself off while the run goes on.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from rlmesh.errors import RLMeshWarning
from rlmesh.viewer.frames import LatestFrame, as_rgb
from rlmesh.viewer.page import HttpDisplay
from rlmesh.viewer.sources import Source, find_sources
from rlmesh.viewer.state import ViewerState
from rlmesh.viewer.terminal import TerminalDisplay
from rlmesh.viewer.view import View, as_view

__all__ = ["Display", "DisplayFactory", "LiveViewer", "open_viewer"]


class Display(Protocol):
    """What shows frames: it draws from the slot on its own thread and counts what it showed."""

    shown: int

    def close(self) -> None:
        """Stop showing (and give back what it holds: the terminal, a port)."""


DisplayFactory = Callable[[LatestFrame, ViewerState], Display]
"""Makes a display over the viewer's slot and state (it raises if it cannot start)."""


class LiveViewer:
    """A :class:`View` at work on one run.

    Args:
        view: What to show and how.
        displays: Display factories to use instead of the ones ``view`` names.
    """

    def __init__(self, view: View, displays: Sequence[DisplayFactory] | None = None) -> None:
        self.view = view
        self.slot = LatestFrame()
        self.state = ViewerState([], fps=view.fps)
        self.displays: list[Display] = []
        self.url: str | None = None
        self._factories = list(displays) if displays is not None else self._default_displays()
        self._sources: dict[str, Source] = {}
        self._period = 1.0 / view.fps
        self._last = -float("inf")
        self._env: Any = None
        self._observation: Any = None
        self.enabled = False
        self._closed = False

    @property
    def frames(self) -> int:
        """How many frames the run produced for the viewer."""
        return self.slot.version

    @property
    def shown(self) -> int:
        """How many frames the displays showed (at most :attr:`frames`; fewer when dropped)."""
        return max((display.shown for display in self.displays), default=0)

    def _default_displays(self) -> list[DisplayFactory]:
        factories: list[DisplayFactory] = []
        if self.view.http:
            factories.append(self._http)
        if self.view.terminal:
            factories.append(self._terminal)
        return factories

    def _http(self, slot: LatestFrame, state: ViewerState) -> Display:
        display = HttpDisplay(slot, state, port=self.view.port, format=self.view.format,
                              quality=self.view.quality)
        self.url = display.url
        print(f"rlmesh viewer: {display.url}", file=sys.stderr, flush=True)
        return display

    @staticmethod
    def _terminal(slot: LatestFrame, state: ViewerState) -> Display:
        display = TerminalDisplay(slot, state)
        try:
            display.start()
        except BaseException:
            display.close()
            raise
        return display

    # -- driven by the runner -----------------------------------------------------------------

    def start(self, env: Any, observation_space: Any, metadata: Mapping[str, Any] | None = None,
              vector: bool = False) -> None:
        """Find what ``env`` offers to show and open the displays (on a vector env: lane 0)."""
        try:
            self._env = env
            sources = find_sources(env, observation_space, metadata, vector)
            self._sources = {source.name: source for source in sources}
            names = list(self._sources)
            self.state = ViewerState(names, self._first(names), self.view.fps)
        except Exception as exc:
            self._give_up(exc)
            return
        for factory in self._factories:
            try:
                self.displays.append(factory(self.slot, self.state))
            except Exception as exc:
                _warn(exc, "without this display")
        self.enabled = bool(self.displays) or not self._factories

    def _first(self, names: list[str]) -> int:
        wanted = self.view.source
        if not names:
            warnings.warn("the viewer has no frames to show: the env neither renders to "
                          "arrays (render_mode='rgb_array') nor observes images; it shows the "
                          "HUD only", RLMeshWarning, stacklevel=4)
        elif wanted is not None and wanted not in names:
            warnings.warn(f"the viewer's source {wanted!r} is not offered by this env "
                          f"(it offers {', '.join(names)}); showing {names[0]!r}",
                          RLMeshWarning, stacklevel=4)
        return names.index(wanted) if wanted in names else 0

    def on_reset(self, observation: Any) -> None:
        """An episode began with ``observation`` (one lane's, on a vector env)."""
        if self.enabled:
            self._safely(self._reset, observation)

    def _reset(self, observation: Any) -> None:
        self.state.episode_started()
        self._observation = observation
        self._grab()

    def on_step(self, observation: Any, reward: float, step: int, terminated: bool,
                truncated: bool) -> None:
        """The run stepped: the HUD takes the numbers; a frame is produced if one is due."""
        if self.enabled:
            self._safely(self._step, observation, reward, step, terminated or truncated)

    def _step(self, observation: Any, reward: float, step: int, done: bool) -> None:
        self.state.stepped(float(reward), step, done)
        self._observation = observation
        self._grab()
        if self.state.error is not None:
            raise self.state.error

    def _grab(self) -> None:
        now = time.monotonic()
        if now - self._last < self._period:
            return
        self._last = now
        source = self._sources.get(self.state.source or "")
        if source is None:
            return
        raw = source.read(self._env, self._observation)
        frame = as_rgb(raw)
        if frame is not None:
            self.slot.put(frame.copy() if np.may_share_memory(frame, raw) else frame)

    def should_skip(self) -> bool:
        """Whether the current episode is to be truncated now (asked for once, answered once)."""
        return self.enabled and self.state.take_skip()

    def should_quit(self) -> bool:
        """Whether the run is to end now (the current episode truncated, the rest not played)."""
        return self.state.quitting

    def close(self) -> None:
        """Close the displays: the terminal is restored, the port given back. Never raises."""
        self.enabled = False
        if self._closed:
            return
        self._closed = True
        for display in self.displays:
            with contextlib.suppress(Exception):
                display.close()

    def _safely(self, call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc: BaseException) -> None:
        self.close()
        _warn(exc, "without it")


def _warn(exc: BaseException, how: str) -> None:
    warnings.warn(f"the live viewer failed ({type(exc).__name__}: {exc}); the run goes on "
                  f"{how}", RLMeshWarning, stacklevel=5)


def open_viewer(view: Any) -> LiveViewer | None:
    """A :class:`LiveViewer` for a ``view=`` value, ``None`` for no viewer.

    Raises:
        ValueError: For a ``view=`` value that names no viewer.
        TypeError: For a ``view=`` value of the wrong type.
    """
    chosen = as_view(view)
    return None if chosen is None else LiveViewer(chosen)
