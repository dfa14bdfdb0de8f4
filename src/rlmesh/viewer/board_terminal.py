"""The evaluation dashboard in the terminal: a board redrawn a few times a second.

:class:`BoardTerminal` draws :func:`~rlmesh.viewer.board_text.draw_board` of the board's
snapshots on the alternate screen, from its own thread (never from the run's threads), sized
to the terminal at each redraw. ``q`` (read in cbreak mode when stdin is a terminal) asks the
run to stop (:meth:`Board.request_stop <rlmesh.viewer.board.Board.request_stop>`); the
evaluation then returns the episodes it finished. :meth:`BoardTerminal.close` gives the
terminal back as it was.
"""

from __future__ import annotations

import shutil
import threading
import warnings
from typing import TextIO

import numpy as np

from rlmesh.errors import RLMeshWarning
from rlmesh.viewer.blocks import halfblocks
from rlmesh.viewer.board import Board
from rlmesh.viewer.board_text import draw_board
from rlmesh.viewer.screen import FullScreen

__all__ = ["BoardTerminal"]


class BoardTerminal(FullScreen):
    """Shows a :class:`~rlmesh.viewer.board.Board` in this terminal.

    Args:
        board: What to show.
        note: Shown in the header (for instance the web page's address).
        fps: Redraws per second.
        stream: Where to draw (default ``sys.stdout``).
    """

    what = "terminal dashboard"
    thread_name = "rlmesh-eval-terminal"

    def __init__(self, board: Board, note: str = "", fps: float = 4.0,
                 stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.board, self.note = board, note
        self._period = 1.0 / fps
        self.quit = threading.Event()
        """Set when ``q`` was pressed."""
        self._thumbs: dict[int, tuple[tuple[int, int, int], list[str]]] = {}
        self._aspect = 1.5
        self.drawn = 0
        """Screens drawn so far."""

    def _key(self, key: str) -> None:
        if key.lower() == "q":
            self.quit.set()
            self.board.request_stop()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.draw()
                if self.board.ended.is_set():  # the summary is in: once more, then idle
                    self._stop.wait(self._period)
                    continue
                self.board.ended.wait(self._period)
        except Exception as exc:
            warnings.warn(f"the terminal dashboard failed ({type(exc).__name__}: {exc}); the "
                          "evaluation goes on without it", RLMeshWarning, stacklevel=1)

    def draw(self) -> None:
        """Draw the board once, sized to the terminal."""
        size = shutil.get_terminal_size((80, 24))
        lines = draw_board(self.board.state(), self._thumbnail, size.columns, size.lines,
                           self.note + ("  q: stop" if self.keys else ""), self._aspect)
        text = "\x1b[H" + "\x1b[K\r\n".join(lines) + "\x1b[K\x1b[J"
        self._out.write(text)
        self._out.flush()
        self.drawn += 1

    def _thumbnail(self, slot: int, columns: int, rows: int) -> list[str]:
        tile = self.board.tile(slot)
        if tile is None:
            return []
        version, frame = tile.frame.get()
        if frame is None:
            return []
        key = (version, columns, rows)
        cached = self._thumbs.get(slot)
        if cached is None or cached[0] != key:
            image = np.asarray(frame)
            self._aspect = image.shape[1] / max(image.shape[0], 1)
            cached = self._thumbs[slot] = (key, halfblocks(image, columns, rows))
        return cached[1]

