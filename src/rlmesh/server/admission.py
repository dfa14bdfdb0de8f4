"""Connections that have not authenticated yet: their deadline, their number, their guesses.

Nothing a client does before it authenticates may cost the server much. A connection is
*pending* from its accept until its client has authenticated (its AUTH succeeded, or, on a
server without a token, its HELLO was accepted). While pending it accepts only small frames
(``ServeOptions.max_handshake_bytes``, enforced by its session), and the :class:`Gate`:

* closes it once ``handshake_timeout`` has passed, however the client trickles its bytes
  (the accept loop calls :meth:`Gate.reap` when the next deadline falls due);
* caps pending connections in total (``max_pending``) and per peer address
  (``max_pending_per_peer``) by closing the **oldest** pending one when a new one would
  exceed a cap. A legitimate client finishes its handshake in milliseconds, so the oldest
  pending connections are the silent ones; refusing the newest instead would let whoever
  holds the slots keep everyone else out for as long as they like;
* slows token guessing per peer: each failed AUTH delays the failure reply, growing with the
  peer's recent failures (bounded, decaying), and holds further proofs from that peer until
  the delay has passed; refusals are logged as one line per interval, with a count.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable

from rlmesh.server.options import ServeOptions

__all__ = ["AuthThrottle", "Gate", "Tally", "peer_key"]

log = logging.getLogger("rlmesh.server")

_CRED = struct.Struct("3i")


def peer_key(sock: socket.socket) -> str:
    """Whom a connection counts against: an IPv4 address, an IPv6 /64, or a local user id."""
    try:
        if sock.family == socket.AF_UNIX:
            option = getattr(socket, "SO_PEERCRED", None)
            if option is None:
                return "unix"
            _, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _CRED.size))
            return f"uid {uid}"
        host = str(sock.getpeername()[0])
    except (OSError, struct.error):
        return "unknown"
    if sock.family != socket.AF_INET6:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class Tally:
    """Counts an event and logs it at most once per ``interval`` seconds, with the count.

    Args:
        message: A ``%``-format with one ``%d`` (the count) and one ``%s`` (the detail).
        interval: Seconds between two lines.
    """

    def __init__(self, message: str, interval: float = 10.0) -> None:
        self.message = message
        self.interval = interval
        self._count = 0
        self._last = -math.inf
        self._lock = threading.Lock()

    def add(self, detail: str, count: int = 1) -> None:
        """Count ``count`` events; log the count so far if the interval has passed."""
        now = time.monotonic()
        with self._lock:
            self._count += count
            if now - self._last < self.interval:
                return
            count, self._count, self._last = self._count, 0, now
        log.warning(self.message, count, detail)


class AuthThrottle:
    """Per-peer back-off of failed AUTH: growing, bounded, decaying.

    A peer's failures score decays by half every ``half_life`` seconds; a failure waits
    ``base * 2 ** (score - 1)`` seconds (at most ``ceiling``) before its reply, and the next
    proof from that peer is not checked before that delay has passed.
    """

    def __init__(self, base: float = 0.05, ceiling: float = 2.0, half_life: float = 30.0,
                 peers: int = 4096) -> None:
        self.base, self.ceiling, self.half_life, self.peers = base, ceiling, half_life, peers
        self._lock = threading.Lock()
        self._state: collections.OrderedDict[str, tuple[float, float, float]] = (
            collections.OrderedDict())
        """peer -> (score, when it was computed, until when its proofs wait)."""

    def hold(self, peer: str) -> float:
        """Seconds a proof from ``peer`` waits before it is checked (0: at once)."""
        with self._lock:
            state = self._state.get(peer)
        if state is None:
            return 0.0
        return min(max(state[2] - time.monotonic(), 0.0), self.ceiling)

    def failed(self, peer: str) -> float:
        """Count a failure of ``peer``; returns the seconds its failure reply waits."""
        now = time.monotonic()
        with self._lock:
            score, then, _ = self._state.pop(peer, (0.0, now, now))
            score = score * math.pow(0.5, (now - then) / self.half_life) + 1.0
            delay = min(self.base * math.pow(2.0, score - 1.0), self.ceiling)
            self._state[peer] = (score, now, now + delay)
            while len(self._state) > self.peers:  # the longest quiet peer goes first
                self._state.popitem(last=False)
        return delay


class Gate:
    """The pending connections of one server (see the module docstring).

    Args:
        options: The server's options (``handshake_timeout``, ``max_pending``,
            ``max_pending_per_peer``).
    """

    def __init__(self, options: ServeOptions) -> None:
        self.timeout = options.handshake_timeout
        self.max_total = options.max_pending
        self.max_per_peer = options.max_pending_per_peer
        self.throttle = AuthThrottle()
        self._lock = threading.Lock()
        self._pending: collections.OrderedDict[int, tuple[float, str, Callable[[], None]]] = (
            collections.OrderedDict())
        """session id -> (deadline, peer, abort), oldest first."""
        self._per_peer: collections.Counter[str] = collections.Counter()
        self._expired = Tally("closed %d connection(s) that did not authenticate within "
                              f"handshake_timeout={self.timeout}s (last from %s)")
        self._evicted = Tally("closed %d pending connection(s) to make room for new ones "
                              f"(max_pending={self.max_total}, max_pending_per_peer="
                              f"{self.max_per_peer}; last from %s)")
        self._refused = Tally("refused %d client(s) with a wrong token (last from %s)")

    def add(self, session_id: int, peer: str, abort: Callable[[], None]) -> None:
        """Count in a new connection; close the oldest pending one over a cap."""
        with self._lock:
            if self._per_peer[peer] >= self.max_per_peer:
                self._evict(next(i for i, e in self._pending.items() if e[1] == peer))
            elif len(self._pending) >= self.max_total:
                self._evict(next(iter(self._pending)))
            self._pending[session_id] = (time.monotonic() + self.timeout, peer, abort)
            self._per_peer[peer] += 1

    def done(self, session_id: int) -> None:
        """The connection authenticated or ended: it is no longer pending. Idempotent.

        Once this returns, the gate no longer closes that connection.
        """
        with self._lock:
            self._drop(session_id)

    def reap(self) -> float | None:
        """Close the connections past their deadline.

        Returns:
            Seconds until the next deadline (``None``: nothing is pending).
        """
        now = time.monotonic()
        with self._lock:
            expired = []
            for session_id, (deadline, peer, abort) in self._pending.items():
                if deadline > now:
                    break
                expired.append((session_id, peer, abort))
            for session_id, _, abort in expired:
                self._drop(session_id)
                abort()
            first = next(iter(self._pending.values()), None)
        if expired:
            self._expired.add(expired[-1][1], len(expired))
        return None if first is None else max(first[0] - now, 0.0)

    @property
    def pending(self) -> int:
        """How many connections are pending now."""
        return len(self._pending)

    def refused(self, peer: str) -> float:
        """Count a failed AUTH of ``peer`` (logged per interval); returns its reply's delay."""
        self._refused.add(peer)
        return self.throttle.failed(peer)

    def _evict(self, session_id: int) -> None:
        _, peer, abort = self._pending[session_id]
        self._drop(session_id)
        abort()
        self._evicted.add(peer)

    def _drop(self, session_id: int) -> None:
        entry = self._pending.pop(session_id, None)
        if entry is not None:
            self._per_peer[entry[1]] -= 1
            if not self._per_peer[entry[1]]:
                del self._per_peer[entry[1]]
