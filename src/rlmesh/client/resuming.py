"""Reconnecting to a parked session, bounded by the resume window and by the call's timeout.

A server with ``ServeOptions(resume_window=...)`` keeps a session whose connection broke for
``window`` seconds (:mod:`rlmesh.server.resume`). The client reconnects with the session key
until whichever ends first: the window (the session is gone: ``SessionLostError``) or the
timeout of the call that noticed the break (``RLMeshTimeoutError``; the session stays parked,
and a later call within the window resumes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rlmesh.client import handshake
from rlmesh.errors import (
    ConnectFailedError,
    ConnectionLostError,
    RLMeshError,
    RLMeshTimeoutError,
    SessionLostError,
)
from rlmesh.transport.sockets import Address

__all__ = ["MIN_ATTEMPT", "reconnect"]

MIN_ATTEMPT = 0.05
"""Seconds every reconnection attempt gets at least (one at the very end of the time)."""
_FIRST_DELAY = 0.02
_LONGEST_DELAY = 0.5


def reconnect(open_session: Callable[[float], handshake.Opened], address: Address,
              cause: RLMeshError, *, window_end: float, deadline: float | None,
              connect_timeout: float | None) -> handshake.Opened:
    """Reconnect and resume the session until the window or the call's time runs out.

    Args:
        open_session: Connects and resumes the session; takes the seconds one attempt may
            take (the connect, and each handshake exchange).
        address: The endpoint (for messages).
        cause: The error that broke the connection.
        window_end: When the server gives the parked session up (``time.monotonic()``).
        deadline: When the call's time runs out; ``None``: only the window bounds it.
        connect_timeout: Most seconds a single attempt may take (``None``: no limit).

    Returns:
        The resumed connection and its contract.

    Raises:
        SessionLostError: The window ran out, or the server no longer holds the session.
        RLMeshTimeoutError: The call's time ran out first; the session may still be resumed
            within the window.
    """
    delay = _FIRST_DELAY
    end = window_end if deadline is None else min(window_end, deadline)
    while True:
        left = end - time.monotonic()
        attempt = left if connect_timeout is None else min(left, connect_timeout)
        try:
            return open_session(max(attempt, MIN_ATTEMPT))
        except SessionLostError as exc:
            raise SessionLostError(
                f"the connection to {address} broke ({cause}) and the session could not be "
                f"resumed: {exc}") from cause
        except (ConnectFailedError, ConnectionLostError, RLMeshTimeoutError) as exc:
            now = time.monotonic()  # (the network may come back)
            if now >= window_end:
                raise SessionLostError(
                    f"the connection to {address} broke ({cause}) and could not be resumed "
                    f"within the server's resume window: {exc}") from cause
            if deadline is not None and now >= deadline:
                raise RLMeshTimeoutError(
                    f"the connection to {address} broke ({cause}) and could not be resumed "
                    f"within the call's timeout ({exc}); the server keeps the session for "
                    f"another {window_end - now:.1f}s, and the next call resumes it"
                ) from cause
            time.sleep(min(delay, end - now))
            delay = min(delay * 2, _LONGEST_DELAY)
