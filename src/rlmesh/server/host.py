"""What a session sees of its server: options, source, admission, counters, resumption.

Sessions get this narrow object, never the :class:`~rlmesh.server.server.EnvServer` itself;
the server owns one and keeps the listening socket, the session threads and shutdown to
itself.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rlmesh.server.deadline import Watchdog
from rlmesh.server.options import ServeOptions
from rlmesh.server.resume import Parked, ResumeRegistry

if TYPE_CHECKING:
    from rlmesh.server.sources import Source

__all__ = ["Host"]

log = logging.getLogger("rlmesh.server")


class Host:
    """A server's shared state, as its sessions use it.

    Args:
        options: How the server behaves.
        source: What it serves.
        token: The shared secret clients must prove they hold (``None``: no token).
        tls: The TLS context, if the server speaks TLS.
        request_shutdown: Shuts the server down from a session's thread (an allowed remote
            ``shutdown()``).
    """

    def __init__(self, options: ServeOptions, source: Source, token: bytes | None,
                 tls: ssl.SSLContext | None, request_shutdown: Callable[[], None]) -> None:
        self.options = options
        self.source = source
        self.token = token
        self.tls = tls
        self.request_shutdown = request_shutdown
        self._lock = threading.Lock()
        self._admitted = 0
        self._stopping = threading.Event()
        self.stats: dict[str, int] = {"sessions": 0, "restarts": 0, "deadlines": 0,
                                      "resumes": 0}
        """Counters since start: sessions admitted, envs restarted, env calls that ran past
        ``step_deadline``, sessions resumed."""
        self.resumes: ResumeRegistry | None = None
        if options.resume_window is not None:
            self.resumes = ResumeRegistry(options.resume_window, self.release_parked)
        self.watchdog: Watchdog | None = None
        if options.step_deadline is not None:
            self.watchdog = Watchdog(options.step_deadline, lambda: self.count("deadlines"))

    @property
    def stopping(self) -> bool:
        """Whether the server is shutting down (no new session is admitted)."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Mark the server as shutting down."""
        self._stopping.set()
        if self.watchdog is not None:
            self.watchdog.stop()

    def admit(self) -> bool:
        """Count a new session in, unless ``max_sessions`` are already being served."""
        limit = self.options.max_sessions
        with self._lock:
            if limit is not None and self._admitted >= limit:
                return False
            self._admitted += 1
            self.stats["sessions"] += 1
            return True

    def dismiss(self) -> None:
        """Count an admitted session out."""
        with self._lock:
            self._admitted -= 1

    def count(self, event: str) -> None:
        """Add one to ``stats[event]``."""
        with self._lock:
            self.stats[event] += 1

    def release_parked(self, parked: Parked) -> None:
        """Free a parked session nobody resumed (what it held, and its ``max_sessions`` slot)."""
        try:
            self.source.release(parked.resource)
        except Exception:  # (the resume reaper must go on)
            log.exception("releasing a parked session failed")
        self.dismiss()
