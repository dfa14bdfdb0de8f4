"""Waiting for a lost endpoint to serve again: jittered exponential backoff.

A restarted server comes back after a second or so on one machine, after 15 s or more when a
cluster manager moves it to another node, and at a new address in general. Whoever waits for
it (an ``rlmesh.evaluate`` slot, a lane of a ``RemoteVectorEnv``) retries with growing pauses
so that a fleet of waiters does not hammer a recovering server, and wakes early when its
:class:`~rlmesh.vector.endpoints.EndpointSet` reports a new address.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from rlmesh.vector.endpoints import EndpointSet

__all__ = ["Backoff", "pause"]

_SLICE = 0.1
"""Longest single wait, so that a waiter notices a stop request quickly."""


class Backoff:
    """Pauses that double from ``first`` up to ``cap`` seconds, each jittered by +-25 %.

    Args:
        first: The first pause, in seconds.
        cap: The longest pause, in seconds.
    """

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        if first <= 0 or cap < first:
            raise ValueError(f"backoff needs 0 < first <= cap, got {first} and {cap}")
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        """The next pause (and double the one after it, up to the cap)."""
        base = self._next
        self._next = min(self._next * 2, self.cap)
        return base * random.uniform(0.75, 1.25)

    def clear(self) -> None:
        """Start again from the first pause (after a success)."""
        self._next = self.first


def pause(endpoints: EndpointSet, version: int, seconds: float,
          stopped: Callable[[], bool] = lambda: False) -> int:
    """Wait ``seconds``, or less when ``endpoints`` changes or ``stopped()`` turns true.

    Args:
        endpoints: The set whose change ends the wait early.
        version: The set's version the caller last saw.
        seconds: The longest wait.
        stopped: Polled at least every 0.1 s; true ends the wait.

    Returns:
        The set's version now.
    """
    deadline = time.monotonic() + seconds
    while not stopped():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        now = endpoints.wait_changed(version, min(left, _SLICE))
        if now != version:
            return now
    return endpoints.version
