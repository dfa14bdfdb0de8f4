"""The client side of one connection: handshake, then request/reply with timeouts."""

from __future__ import annotations

import contextlib
import enum
import threading
from typing import Any, Final

from rlmesh import protocol as P
from rlmesh.codec import Decoder, Encoder
from rlmesh.errors import (
    ConnectionLostError,
    EnvClosedError,
    MessageTooLargeError,
    ProtocolError,
    RLMeshError,
    RLMeshTimeoutError,
    TransportError,
)
from rlmesh.transport import Connection, connect, parse_address

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 60.0


class _Default(enum.Enum):
    TOKEN = 0


DEFAULT: Final = _Default.TOKEN
"""Sentinel: use the channel's own timeout."""


class Channel:
    """A connected, handshaken session with an rlmesh server.

    Every request is bounded by ``timeout``. After a timeout or a transport error the
    channel is unusable (a late reply would be mistaken for the next one) and every later
    request raises at once. Thread-safe: requests from several threads are serialised.

    Args:
        address: Endpoint address string.
        connect_timeout: Seconds allowed for connecting and the handshake.
        timeout: Seconds allowed for each request, or ``None`` for no limit.
        max_message_bytes: Largest reply frame accepted.
    """

    def __init__(
        self,
        address: str,
        *,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_message_bytes: int = P.DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.address = parse_address(address)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._next_id = 0
        self._broken: RLMeshError | None = None
        self._peer_max = P.DEFAULT_MAX_MESSAGE_BYTES
        self._closed = False
        sock = connect(self.address, connect_timeout)
        self._conn = Connection(sock, max_message_bytes)
        self._encoder = Encoder()
        self._decoder = Decoder()
        try:
            self._conn.set_timeout(connect_timeout)
            hello = {"rlmesh": P.PROTOCOL_VERSION, "client": P.CLIENT_NAME, "capabilities": []}
            contract = self.request(P.OP_HELLO, hello, timeout=connect_timeout)[2]
            if not isinstance(contract, dict):
                raise ProtocolError("the server's contract is not a map")
            self._conn.set_timeout(timeout)
        except BaseException:
            self._conn.close()
            raise
        self.contract: dict[str, Any] = contract
        peer_max = contract.get("max_message_bytes")
        if isinstance(peer_max, int) and peer_max > 0:
            self._peer_max = peer_max

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def _fail(self, error: RLMeshError) -> RLMeshError:
        self._broken = error
        self._conn.close()
        return error

    def _unusable(self) -> RLMeshError:
        if self._closed:
            return EnvClosedError("this env has been closed")
        return ConnectionLostError(
            f"the connection to {self.address} is unusable after an earlier error: "
            f"{self._broken}"
        )

    def request(self, op: int, *args: Any, timeout: float | _Default | None = DEFAULT
                ) -> list[Any]:
        """Send one request and wait for its reply.

        Args:
            op: The op code.
            *args: The op's arguments.
            timeout: Override of the channel timeout for this request.

        Returns:
            The reply header ``[status, request_id, *values]`` (status is always OK).

        Raises:
            RLMeshTimeoutError: No reply in time (the channel is closed).
            ConnectionLostError: The server went away (the channel is closed).
            RLMeshError: The typed error the server answered with.
        """
        with self._lock:
            if self._broken is not None or self._closed:
                raise self._unusable()
            rid = self._next_id
            self._next_id = rid + 1
            header, buffers, body_len = self._encoder.encode([op, rid, *args])
            if len(header) + body_len > self._peer_max:
                raise MessageTooLargeError(
                    f"request of {len(header) + body_len} bytes exceeds the server's limit of "
                    f"{self._peer_max}; nothing was sent"
                )
            conn = self._conn
            override = timeout is not DEFAULT
            if override:
                conn.set_timeout(timeout)  # type: ignore[arg-type]
            try:
                conn.send(header, buffers, body_len)
                reply_header, body = conn.recv()
                reply = self._decoder.decode(reply_header, body)
            except (BlockingIOError, TimeoutError):
                limit = timeout if override else self.timeout
                raise self._fail(RLMeshTimeoutError(
                    f"{P.OP_NAMES.get(op, op)} to {self.address} got no reply within {limit}s"
                )) from None
            except (TransportError, OSError) as exc:
                raise self._fail(ConnectionLostError(
                    f"connection to {self.address} lost: {exc}")) from exc
            except ProtocolError as exc:
                raise self._fail(exc) from None
            finally:
                if override and self._broken is None:
                    conn.set_timeout(self.timeout)
            if type(reply) is list and len(reply) > 2 and reply[1] == rid:
                if reply[0] == P.STATUS_OK:
                    return reply
            elif not (type(reply) is list and len(reply) == 3 and reply[0] == P.STATUS_ERROR):
                # (an error sent before the server could read our request id is fine)
                raise self._fail(ProtocolError(f"unexpected reply {reply!r:.200}"))
            error = P.error_from_map(reply[2])
            if isinstance(reply[2], dict) and reply[2].get("fatal"):
                self._fail(error)
            raise error

    def close(self, timeout: float = 1.0) -> None:
        """Tell the server goodbye (best effort, bounded) and close the socket. Idempotent."""
        with self._lock:
            if self._closed:
                return
            broken = self._broken
        if broken is None:
            with contextlib.suppress(RLMeshError):
                self.request(P.OP_CLOSE, timeout=timeout)
        with self._lock:
            self._closed = True
            self._conn.close()

    def abandon(self) -> None:
        """Close the socket without a goodbye (for finalizers)."""
        self._closed = True
        self._conn.close()
