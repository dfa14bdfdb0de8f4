"""Resumable sessions: an env that outlives its connection for a while.

With ``ServeOptions(resume_window=...)`` every session gets a random key (sent in the
contract). When its connection breaks, the session is *parked*: its env stays alive, with the
last reply it sent, for ``resume_window`` seconds. A client that reconnects with the key
within the window gets the same env back and resends its unanswered request with the same
request id; the server answers a request it already executed from the kept reply, so no step
is applied twice or lost. A parked session that nobody reclaims in time is released like any
ended session.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["KEY_BYTES", "Parked", "ResumeRegistry", "new_key"]

KEY_BYTES = 16


def new_key() -> bytes:
    """A fresh, unguessable session key."""
    return secrets.token_bytes(KEY_BYTES)


@dataclasses.dataclass
class Parked:
    """What a session leaves behind when its connection breaks."""

    resource: Any
    """The session's env (or what else its source lent it)."""
    has_reset: bool
    last_reply: tuple[Any, bytes, list[Any], int] | None
    """``(request_id, header, buffers, body_len)`` of the last reply sent."""
    restarts_left: int
    expires: float = 0.0


class ResumeRegistry:
    """Live and parked resumable sessions of one server, by key.

    Args:
        window: Seconds a parked session waits to be reclaimed.
        release: Called with a parked session that expired (frees its env and its slot).
    """

    def __init__(self, window: float, release: Callable[[Parked], None]) -> None:
        self.window = window
        self._release = release
        self._cv = threading.Condition()
        self._live: dict[bytes, Callable[[], None]] = {}
        """How to cut off the connection of each live session, by key."""
        self._parked: dict[bytes, Parked] = {}
        self._reaper: threading.Thread | None = None
        self._closed = False

    def register(self, key: bytes, abort: Callable[[], None]) -> None:
        """Record a connected session under ``key``; ``abort`` cuts its connection off."""
        with self._cv:
            self._live[key] = abort

    def forget(self, key: bytes) -> None:
        """Drop a session that ended for good (closed, failed, or released)."""
        with self._cv:
            self._live.pop(key, None)
            self._cv.notify_all()

    def park(self, key: bytes, parked: Parked) -> bool:
        """Keep a session whose connection broke; ``False`` if the server is closing."""
        with self._cv:
            self._live.pop(key, None)
            if self._closed:
                self._cv.notify_all()
                return False
            parked.expires = time.monotonic() + self.window
            self._parked[key] = parked
            self._cv.notify_all()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="rlmesh-resume",
                                                daemon=True)
                self._reaper.start()
        return True

    def reclaim(self, key: bytes, wait: float) -> Parked | None:
        """Take a parked session back, waiting up to ``wait`` s for a live one to park.

        A session still attached to a connection (its client noticed the break first) is
        cut off, and parks as soon as its current request is done.
        """
        deadline = time.monotonic() + wait
        with self._cv:
            while True:
                parked = self._parked.pop(key, None)
                if parked is not None:
                    return parked
                abort = self._live.get(key)
                left = deadline - time.monotonic()
                if abort is None or left <= 0:
                    return None
                abort()
                self._cv.wait(min(left, 0.1))

    def close(self) -> list[Parked]:
        """Stop parking; return what is parked (for the server to release)."""
        with self._cv:
            self._closed = True
            parked = list(self._parked.values())
            self._parked.clear()
            self._cv.notify_all()
        return parked

    def _reap(self) -> None:
        while True:
            with self._cv:
                if self._closed:
                    return
                now = time.monotonic()
                expired = [k for k, p in self._parked.items() if p.expires <= now]
                gone = [self._parked.pop(k) for k in expired]
            for parked in gone:
                self._release(parked)
            with self._cv:
                if self._closed:
                    return
                self._cv.wait(min(self.window, 0.25))
