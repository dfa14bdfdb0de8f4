"""The accept loop's waiting: for a connection, the wake pipe, or the next pending deadline.

:class:`Acceptor` waits with :mod:`selectors` (``epoll`` on Linux), which takes descriptors of
any number (``select()`` cannot take 1,024 or more). When ``accept()`` fails for want of a
resource (descriptors, buffers, memory), or a session thread cannot be started, it stops
watching the listener for a short delay that doubles up to a second while the failures go
on, instead of spinning on a listener that stays readable; it says so once per episode.

A server that accepts in the main thread (:meth:`rlmesh.EnvServer.serve`) also wakes for
signals (:func:`signal_wakeups`): the kernel may deliver Ctrl+C to any thread of the process,
a native one too (a BLAS pool's), and Python runs its handler only once the main thread
returns from its wait, which a wait without a deadline would never do.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Iterator

from rlmesh.server.admission import Gate
from rlmesh.transport.memory import MemoryListener, MemoryTransport

__all__ = ["Acceptor", "signal_wakeups"]

log = logging.getLogger("rlmesh.server")

RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""``accept()`` failures that say the process or the system is out of something."""
FIRST_BACKOFF = 0.02
MAX_BACKOFF = 1.0


class Acceptor:
    """Accepts connections, keeping pending deadlines and backing off when out of resources.

    Args:
        listener: The listening socket (or in-process listener).
        wake_fd: Read end of a pipe; a byte there stops :meth:`next`.
        gate: The pending connections, whose deadlines are enforced while waiting.
        signal_fd: Read end of the signal wake-up pipe (:func:`signal_wakeups`), or
            ``None``: a byte there only ends the current wait, so that Python runs the
            signal's handler (Ctrl+C raises ``KeyboardInterrupt`` out of :meth:`next`).
    """

    def __init__(self, listener: socket.socket | MemoryListener, wake_fd: int,
                 gate: Gate, signal_fd: int | None = None) -> None:
        self.listener = listener
        self.gate = gate
        self._signal_fd = signal_fd
        self._all = selectors.DefaultSelector()
        self._all.register(listener, selectors.EVENT_READ)
        self._all.register(wake_fd, selectors.EVENT_READ)
        self._wake_only = selectors.DefaultSelector()
        self._wake_only.register(wake_fd, selectors.EVENT_READ)
        if signal_fd is not None:
            self._all.register(signal_fd, selectors.EVENT_READ)
            self._wake_only.register(signal_fd, selectors.EVENT_READ)
        self._delay = 0.0
        """The current back-off (0: none)."""
        self._pause = 0.0
        """Seconds to wait before watching the listener again."""

    def next(self) -> socket.socket | MemoryTransport | None:
        """The next accepted connection; ``None`` once woken through the pipe."""
        while True:
            if self._pause:
                pause, self._pause = self._pause, 0.0
                if self._wait(self._wake_only, pause):
                    return None
            if self._wait(self._all, None):
                return None
            try:
                accepted, _ = self.listener.accept()
            except OSError as exc:
                if exc.errno in RESOURCE_ERRORS:
                    self.back_off(str(exc))
                continue
            return accepted

    def _wait(self, selector: selectors.BaseSelector, limit: float | None) -> bool:
        """Wait up to ``limit`` seconds (``None``: until ready), closing overdue handshakes.

        Returns:
            Whether the wake pipe became readable; ``False`` when the listener is ready or
            the time is up.
        """
        end = None if limit is None else time.monotonic() + limit
        while True:
            due = self.gate.reap()
            left = None if end is None else max(end - time.monotonic(), 0.0)
            timeout = due if left is None else left if due is None else min(due, left)
            events = selector.select(timeout)
            signal_fd = self._signal_fd
            if signal_fd is not None and any(key.fd == signal_fd for key, _ in events):
                _drain(signal_fd)  # (the handler has run by now; wait on)
                events = [(key, mask) for key, mask in events if key.fd != signal_fd]
                if not events:
                    continue
            if any(key.fileobj is not self.listener for key, _ in events):
                return True
            if events or (end is not None and time.monotonic() >= end):
                return False

    def back_off(self, why: str) -> None:
        """Stop watching the listener for a while, longer each time in a row; log once."""
        if self._delay:
            self._delay = min(self._delay * 2, MAX_BACKOFF)
        else:
            log.warning("cannot take a connection (%s); pausing accepts, then retrying "
                        "with delays of up to %ss until it works again", why, MAX_BACKOFF)
            self._delay = FIRST_BACKOFF
        self._pause = self._delay

    def recovered(self) -> None:
        """A connection was taken and its session started: end a back-off episode."""
        if self._delay:
            log.warning("taking connections again")
            self._delay = 0.0

    def close(self) -> None:
        """Release the selectors (the listener and the pipe stay open)."""
        self._all.close()
        self._wake_only.close()


def _drain(fd: int) -> None:
    """Read whatever the non-blocking signal wake-up pipe holds."""
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


@contextlib.contextmanager
def signal_wakeups() -> Iterator[int | None]:
    """A pipe the signals' C handler writes to, for the main thread's accept loop to watch.

    Yields its read end, or ``None`` when not in the main thread or when another wake-up
    descriptor is set already (an event loop's: left alone). The previous setting is
    restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        if previous != -1:
            signal.set_wakeup_fd(previous)
            yield None
            return
        try:
            yield read_fd
        finally:
            signal.set_wakeup_fd(-1)
    finally:
        os.close(read_fd)
        os.close(write_fd)
