"""The step deadline: a watchdog answers an env call that runs too long, for its session.

With ``ServeOptions(step_deadline=S)`` every env call of a session runs through
:meth:`Deadline.run`. A watchdog thread (:class:`Watchdog`, one per server, started with the
first session it watches) checks the running calls; one past the deadline is answered with
``StepDeadlineError`` at once, its connection is shut down, and the server goes on serving
everyone else. The stalled call is left to return (or not) on its own, and its result is
dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from rlmesh.server.replies import Expired

__all__ = ["Deadline", "Watchdog"]


class Deadline:
    """The env call a session is running under the step deadline, if any."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._call: tuple[Any, float] | None = None
        """``(request_id, started)`` of the running call."""

    def run(self, rid: Any, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``call`` as request ``rid``; the watchdog may answer for it meanwhile.

        Raises:
            Expired: If the watchdog answered first (the result is dropped).
        """
        with self._guard:
            self._call = (rid, time.monotonic())
        try:
            return call(*args, **kwargs)
        finally:
            with self._guard:
                expired = self._call is None
                self._call = None
            if expired:  # the client already has its StepDeadlineError: drop the result
                raise Expired("step deadline")

    def overdue(self, now: float, limit: float) -> tuple[Any, float] | None:
        """Take the running call if it has run ``limit`` seconds: ``(request_id, started)``.

        The call counts as answered from then on (:meth:`run` raises ``Expired``).
        """
        with self._guard:
            call = self._call
            if call is None or now - call[1] < limit:
                return None
            self._call = None
        return call


class Watched(Protocol):
    """What the watchdog needs of a session."""

    def expire(self, now: float, limit: float) -> bool:
        """Answer an overdue call (and end the session); whether there was one."""


class Watchdog:
    """One thread per server that ends the sessions whose env call is overdue.

    Args:
        limit: The step deadline in seconds.
        expired: Called once per session that expired (to count it).
    """

    def __init__(self, limit: float, expired: Callable[[], None]) -> None:
        self.limit = limit
        self._expired = expired
        self._lock = threading.Lock()
        self._watched: set[Watched] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def watch(self, session: Watched) -> None:
        """Check ``session`` from now on (the thread starts with the first one)."""
        with self._lock:
            self._watched.add(session)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="rlmesh-watchdog",
                                                daemon=True)
                self._thread.start()

    def forget(self, session: Watched) -> None:
        """Stop checking ``session`` (it ended)."""
        with self._lock:
            self._watched.discard(session)

    def stop(self) -> None:
        """End the thread."""
        self._stop.set()

    def _loop(self) -> None:
        interval = min(self.limit / 4, 0.05)
        while not self._stop.wait(interval):
            now = time.monotonic()
            with self._lock:
                watched = list(self._watched)
            for session in watched:
                if session.expire(now, self.limit):
                    self._expired()
