"""Keys pressed in the terminal, read without blocking the run.

:class:`KeyReader` puts the terminal in cbreak mode (keys arrive one by one, unechoed; Ctrl+C
still interrupts) and reads them on its own thread, only when stdin is a terminal. It
restores the terminal's settings when closed, and at interpreter exit should a close be
missed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["KeyReader"]


class KeyReader:
    """Reads single keys from ``stream`` on a thread and hands each to ``on_key``.

    Args:
        on_key: Called (on the reader's thread) with each key, a one-character string.
        stream: The terminal to read (default ``sys.stdin``); nothing is read unless it is a
            TTY.
    """

    def __init__(self, on_key: Callable[[str], None], stream: TextIO | None = None) -> None:
        self._on_key = on_key
        self._stream = stream if stream is not None else sys.stdin
        self._saved: Any = None
        self._fd = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether keys are being read."""
        return self._thread is not None

    def start(self) -> None:
        """Enter cbreak mode and start reading (nothing happens when stdin is no TTY)."""
        try:
            import termios
            import tty
        except ImportError:  # not a POSIX terminal: no keys
            return
        try:
            if not self._stream.isatty():
                return
            self._fd = self._stream.fileno()
        except (AttributeError, ValueError, OSError):
            return
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        atexit.register(self.close)
        self._thread = threading.Thread(target=self._read, name="rlmesh-viewer-keys",
                                        daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(self._fd, 32)
            except (OSError, ValueError):
                return
            if not data:
                return
            for key in data.decode("utf-8", "replace"):
                self._on_key(key)

    def close(self) -> None:
        """Stop reading and restore the terminal's settings."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1)
            self._thread = None
        if self._saved is not None:
            import termios

            saved, self._saved = self._saved, None
            with contextlib.suppress(OSError, ValueError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)
            atexit.unregister(self.close)
