"""A display that owns the terminal while it runs: the alternate screen, keys, a draw thread.

The run viewer (:class:`~rlmesh.viewer.terminal.TerminalDisplay`) and the evaluation
dashboard (:class:`~rlmesh.viewer.board_terminal.BoardTerminal`) both draw from a thread of
their own on the alternate screen buffer and read keys in cbreak mode; this is that shared
part. :meth:`FullScreen.close` gives the terminal back as it was, whatever happened.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from rlmesh.viewer.blocks import ENTER, LEAVE
from rlmesh.viewer.keys import KeyReader

__all__ = ["FullScreen"]


class FullScreen:
    """The terminal-owning part of a display; subclasses draw in :meth:`_loop`.

    Args:
        stream: Where to draw (default ``sys.stdout``).
    """

    what = "display"
    """What it is called in the not-a-terminal error."""
    thread_name = "rlmesh-screen"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._out = stream if stream is not None else sys.stdout
        self._keys = KeyReader(self._key)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._entered = False

    @property
    def keys(self) -> bool:
        """Whether keys are read (stdin is a terminal)."""
        return self._keys.active

    def start(self) -> None:
        """Switch to the alternate screen and start drawing and reading keys.

        Raises:
            OSError: If the output is not a terminal.
        """
        if not self._out.isatty():
            raise OSError(f"the {self.what} needs a terminal (stdout is not a TTY); "
                          "use view='http'")
        self._entered = True
        self._out.write(ENTER)
        self._out.flush()
        self._keys.start()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def _key(self, key: str) -> None:
        """A key was pressed (nothing happens unless a subclass says so)."""

    def _loop(self) -> None:
        """Draw until :attr:`_stop` is set."""
        raise NotImplementedError

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
