"""The terminal viewer: frames as half-block characters, a HUD line, keys as controls.

Frames are drawn as coloured half blocks (:mod:`rlmesh.viewer.blocks`, two pixels per cell)
scaled to the terminal's size, read again at every frame so that resizing works. The display
runs on the alternate screen buffer and draws on its own thread from the viewer's latest-frame
slot: a frame that arrives while one is drawn replaces the one waiting.
Keys: ``s`` skips the episode, ``q`` quits the run, ``n`` or Tab shows the next source.
"""

from __future__ import annotations

import shutil
import sys
import threading
from typing import Any, TextIO

import numpy as np

from rlmesh.viewer.blocks import ENTER, LEAVE, halfblocks
from rlmesh.viewer.frames import LatestFrame
from rlmesh.viewer.keys import KeyReader
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


class TerminalDisplay:
    """Draws the viewer in the terminal on its own thread and reads its keys.

    Args:
        slot: Where the run puts frames.
        state: The HUD and controls.
        stream: Where to draw (default ``sys.stdout``).
    """

    def __init__(self, slot: LatestFrame, state: ViewerState,
                 stream: TextIO | None = None) -> None:
        self._slot, self._state = slot, state
        self._out = stream if stream is not None else sys.stdout
        self._keys = KeyReader(self._key)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._entered = False
        self.shown = 0

    def start(self) -> None:
        """Switch to the alternate screen and start drawing and reading keys.

        Raises:
            OSError: If the output is not a terminal.
        """
        if not self._out.isatty():
            raise OSError("the terminal viewer needs a terminal (stdout is not a TTY); "
                          "use view='http'")
        self._entered = True
        self._out.write(ENTER)
        self._out.flush()
        self._keys.start()
        self._thread = threading.Thread(target=self._draw_loop, name="rlmesh-viewer-terminal",
                                        daemon=True)
        self._thread.start()

    def _key(self, key: str) -> None:
        action = KEYS.get(key.lower() if key != "\t" else key)
        if action is not None:
            self._state.request(action)

    def _draw_loop(self) -> None:
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

    def close(self) -> None:
        """Stop drawing, restore the terminal's settings and leave the alternate screen."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self._thread = None
        self._keys.close()
        if self._entered:
            self._entered = False
            try:
                self._out.write(LEAVE)
                self._out.flush()
            except (OSError, ValueError):
                pass
