"""An evaluation watched: one :class:`~rlmesh.viewer.board.Board`, the displays that show it.

``rlmesh.evaluate(..., view=...)`` and ``rlmesh eval --view`` name where to watch with the
same values as ``rlmesh.run``: ``"http"`` or ``"http:PORT"`` (the web dashboard,
:mod:`rlmesh.viewer.dashboard`), ``"terminal"`` or ``True`` (the terminal dashboard,
:mod:`rlmesh.viewer.board_terminal`), ``"both"``, or a ``rlmesh.View``. Both displays read the
one board the run feeds. The terminal is best effort: when stdout is not a terminal that is
one :class:`~rlmesh.RLMeshWarning`, and the run goes on without it.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import warnings
from typing import Any

from rlmesh.errors import RLMeshWarning
from rlmesh.viewer.board import Board
from rlmesh.viewer.board_terminal import BoardTerminal
from rlmesh.viewer.dashboard import Dashboard
from rlmesh.viewer.view import View, as_view

__all__ = ["EVAL_FPS", "EvalWatch"]

EVAL_FPS = 5.0
"""Frames per second each endpoint's tile gets at most, unless a ``rlmesh.View`` says."""


class EvalWatch:
    """The board of one evaluation and the displays that show it.

    Make one with :meth:`open`; pass it as ``view=`` to ``rlmesh.evaluate`` to keep it (and
    its final summary) after the run, then :meth:`close` it (or use it as a context manager).

    Args:
        board: What the run feeds.
        dashboard: The web dashboard showing ``board``, if any.
        owns_dashboard: Whether :meth:`close` closes the dashboard too.
    """

    def __init__(self, board: Board, dashboard: Dashboard | None = None,
                 owns_dashboard: bool = True) -> None:
        self.board = board
        self.dashboard = dashboard
        self._owns_dashboard = owns_dashboard
        self.terminal: BoardTerminal | None = None

    @classmethod
    def open(cls, view: Any) -> EvalWatch:
        """Start what ``view`` names; the web page's address is printed on stderr.

        Args:
            view: ``"terminal"``, ``True``, ``"http"``, ``"http:PORT"``, ``"both"``, a
                ``rlmesh.View`` or a :class:`~rlmesh.viewer.dashboard.Dashboard` (used as it
                is, and left open).

        Raises:
            ValueError: For a value that names no viewer (or ``None``/``False``).
            TypeError: For a value of the wrong type.
            OSError: If the web page's port cannot be bound.
        """
        if isinstance(view, Dashboard):
            return cls(view.board, view, owns_dashboard=False)
        chosen = as_view(view)
        if chosen is None:
            raise ValueError(f"view={view!r} shows nothing")
        fps = chosen.fps if isinstance(view, View) else EVAL_FPS
        dashboard = Dashboard(chosen.port or 0, fps=fps) if chosen.http else None
        watch = cls(dashboard.board if dashboard is not None else Board(fps), dashboard)
        if dashboard is not None:
            print(f"rlmesh: watch the evaluation at {dashboard.url}", file=sys.stderr,
                  flush=True)
        if chosen.terminal:
            watch.start_terminal()
        return watch

    def start_terminal(self) -> None:
        """Show the board in this terminal too (a warning, and nothing, if it is not one)."""
        note = "" if self.dashboard is None else self.dashboard.url
        terminal = BoardTerminal(self.board, note=note)
        try:
            terminal.start()
        except OSError as exc:
            terminal.close()
            warnings.warn(f"{exc}; the evaluation goes on without it", RLMeshWarning,
                          stacklevel=3)
            return
        self.terminal = terminal

    @property
    def showing(self) -> bool:
        """Whether any display shows the board."""
        return self.dashboard is not None or self.terminal is not None

    @property
    def url(self) -> str | None:
        """The web page's address (``None`` without one)."""
        return None if self.dashboard is None else self.dashboard.url

    @property
    def stop_requested(self) -> threading.Event:
        """Set when a viewer asks the run to stop early (``q`` in the terminal)."""
        return self.board.stop_requested

    def linger(self, seconds: float) -> None:
        """Keep showing the final summary ``seconds`` more (``inf``: until Ctrl+C, or ``q``)."""
        deadline = time.monotonic() + seconds if math.isfinite(seconds) else math.inf
        quit_pressed = self.terminal.quit if self.terminal is not None else threading.Event()
        while time.monotonic() < deadline and not quit_pressed.is_set():
            quit_pressed.wait(min(0.2, max(deadline - time.monotonic(), 0.0)))

    def close(self) -> None:
        """Give the terminal back and stop serving the page (one of one's own stays open)."""
        if self.terminal is not None:
            self.terminal.close()
            self.terminal = None
        if self.dashboard is not None and self._owns_dashboard:
            self.dashboard.close()

    def __enter__(self) -> EvalWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
