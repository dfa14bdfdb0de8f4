"""Reconnecting to a parked session, bounded by the resume window and by the call's timeout.

A server with ``ServeOptions(resume_window=...)`` keeps a session whose connection broke for
``window`` seconds (:mod:`rlmesh.server.resume`). The client reconnects with the session key
until whichever ends first: the window (the session is gone: ``SessionLostError``) or the
timeout of the call that noticed the break (``RLMeshTimeoutError``; the session stays parked,
and a later call within the window resumes it). :class:`Resumable` is the channel's part that
does it: it reopens the connection, resends the unanswered request under its id (the server
answers it exactly once), and bounds it all by the call's timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rlmesh.client import handshake
from rlmesh.client.exchange import Exchange
from rlmesh.errors import (
    ConnectFailedError,
    ConnectionLostError,
    RLMeshError,
    RLMeshTimeoutError,
    SessionLostError,
)
from rlmesh.transport.sockets import Address

__all__ = ["MIN_ATTEMPT", "Resumable", "reconnect"]

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


class Resumable(Exchange):
    """An :class:`~rlmesh.client.exchange.Exchange` that resumes its session after a break.

    It resumes only where the server offered a resume window in the handshake, the break
    dropped the connection (not a timeout or a protocol error), and at most one request was
    unanswered.
    """

    def _reopen(self, cause: RLMeshError, deadline: float | None) -> bool:
        """Resume the session on a new connection and resend the unanswered request.

        Args:
            cause: The error that broke the old connection.
            deadline: When the call's time runs out (``time.monotonic()``; ``None``: never).

        Returns:
            ``False`` if this session cannot be resumed (the caller raises ``cause``).

        Raises:
            SessionLostError: Resumption failed (the window ran out, or the server no
                longer holds the session).
            RLMeshTimeoutError: The call's time ran out first (the session stays
                resumable: the next call within the window resumes it).
        """
        if (self._resume is None or not self._dropped or self._closed
                or len(self._pending) > 1 or self._sent is None):
            return False
        self._resume_session(cause, deadline)
        rid, op, args = self._sent
        header, buffers, body_len = self._encoder.encode([op, rid, *args])
        self._send_frame(op, header, buffers, body_len, True)
        return True

    def _resume_session(self, cause: RLMeshError, deadline: float | None) -> None:
        """Reconnect with the session key (see :func:`rlmesh.client.resuming.reconnect`)."""
        offer = self._resume
        assert offer is not None
        if self._window_end is None:  # the server parks the session about now
            self._window_end = time.monotonic() + float(offer.get("window") or 0)
        try:
            opened = reconnect(
                lambda seconds: self._open(seconds, {"resume": {"key": offer["key"]}}),
                self.address, cause, window_end=self._window_end, deadline=deadline,
                connect_timeout=self._connect_timeout)
        except RLMeshTimeoutError:
            self._sent = None  # this call gives up its reply; the next one resumes first
            raise
        except SessionLostError:
            self._dropped = False  # for good: later calls fail at once
            self._window_end = None
            raise
        self._conn = opened.conn
        self._slots = self._fast = None  # (a resumed session steps with frames)
        self._fast_frames = None
        self._conn.set_timeout(None if deadline is None
                               else max(deadline - time.monotonic(), MIN_ATTEMPT))
        self._retimed = True
        self._broken = None
        self._dropped = False
        self._window_end = None

    def _restore_timeout(self) -> None:
        """Put the channel's timeout back after a resume bounded the call's remaining time."""
        self._retimed = False
        if self._broken is None and not self._closed:
            self._conn.set_timeout(self.timeout)

    def _resume_before_send(self, limit: float | None) -> None:
        """Resume a session an earlier call left parked (it timed out resuming); else raise.

        Raises:
            ConnectionLostError: The channel is unusable (``EnvClosedError`` if closed).
            SessionLostError: As :meth:`_reopen`.
            RLMeshTimeoutError: As :meth:`_reopen`.
        """
        if (self._closed or self._resume is None or not self._dropped or self._pending
                or self._window_end is None or self._broken is None):
            raise self._unusable()
        deadline = None if limit is None else time.monotonic() + limit
        self._resume_session(self._broken, deadline)

    def _call_locked(self, op: int, args: tuple[Any, ...], limit: float | None) -> list[Any]:
        """Send a request and receive its reply, resuming the session if it breaks.

        The whole call, resumption included, is bounded by ``limit`` seconds.
        """
        deadline = None if limit is None else time.monotonic() + limit
        try:
            try:
                rid = self._send_locked(op, args, limit)
            except ConnectionLostError as exc:
                if not self._reopen(exc, deadline):
                    raise
                rid = self._next_id - 1
            return self._recv_resuming(op, rid, limit, deadline)
        finally:
            if self._retimed:
                self._restore_timeout()

    def _recv_resuming(self, op: int, rid: int, limit: float | None,
                       deadline: float | None) -> list[Any]:
        """Receive the reply to ``rid``, resuming the session (and resending) if it breaks."""
        while True:
            try:
                return self._recv_locked(op, rid, limit)
            except ConnectionLostError as exc:
                if not self._reopen(exc, deadline):
                    raise
