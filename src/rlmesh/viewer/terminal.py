"""The terminal viewer: frames as half-block characters, a HUD line, keys as controls.

Frames are drawn as coloured half blocks (:mod:`rlmesh.viewer.blocks`, two pixels per cell)
scaled to the terminal's size, read again at every frame so that resizing works. The display
runs on the alternate screen buffer and draws on its own thread from the viewer's latest-frame
slot: a frame that arrives while one is drawn replaces the one waiting.
Keys: ``s`` skips the episode, ``q`` quits the run, ``n`` or Tab shows the next source.
"""

from __future__ import annotations

import shutil
from typing import Any, TextIO

import numpy as np

from rlmesh.viewer.blocks import halfblocks
from rlmesh.viewer.frames import LatestFrame
from rlmesh.viewer.screen import FullScreen
from rlmesh.viewer.state import ViewerState

__all__ = ["KEYS", "TerminalDisplay", "halfblocks", "hud_line"]

KEYS = {"s": "skip", "q": "quit", "n": "next", "\t": "next"}
"""Key -> the viewer action it asks for."""


def hud_line(state: dict[str, Any]) -> str:
    """The HUD: episode, step, the last reward, the return, the source and the frame rate."""
    return (f"episode {max(state['episode'], 0)}  step {state['step']}  "
            f"reward {state['reward']:+.3f}  return {state['return']:+.3f}  "
            f"source {state['source'] or '-'}  fps {state['fps']:g}  "
            "[s]kip [q]uit [n]ext source")


class TerminalDisplay(FullScreen):
    """Draws the viewer in the terminal on its own thread and reads its keys.

    Args:
        slot: Where the run puts frames.
        state: The HUD and controls.
        stream: Where to draw (default ``sys.stdout``).
    """

    what = "terminal viewer"
    thread_name = "rlmesh-viewer-terminal"

    def __init__(self, slot: LatestFrame, state: ViewerState,
                 stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._slot, self._state = slot, state
        self.shown = 0

    def _key(self, key: str) -> None:
        action = KEYS.get(key.lower() if key != "\t" else key)
        if action is not None:
            self._state.request(action)

    def _loop(self) -> None:
        version = 0
        try:
            while not self._stop.is_set():
                newer, frame = self._slot.wait_newer(version, 0.25)
                if newer == version:
                    self._draw(None)  # no new frame: refresh the HUD only
                    continue
                version = newer
                self._draw(frame)
        except Exception as exc:
            self._state.fail(exc)

    def _draw(self, frame: np.ndarray | None) -> None:
        size = shutil.get_terminal_size((80, 24))
        hud = hud_line(self._state.snapshot())[: size.columns]
        parts = ["\x1b[H", hud, "\x1b[K"]
        if frame is not None:
            for line in halfblocks(frame, size.columns, max(1, size.lines - 2)):
                parts.append("\r\n" + line + "\x1b[K")
            parts.append("\x1b[J")
            self.shown += 1
        self._out.write("".join(parts))
        self._out.flush()

