"""The client side of one connection: handshake, then request/reply with timeouts."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

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
            hello = {"rlmesh": P.PROTOCOL_VERSION, "client": P.CLIENT_NAME, "capabilities": []}
            contract = self.request(P.OP_HELLO, hello, timeout=connect_timeout)[2]
        except BaseException:
            self._conn.close()
            raise
        if not isinstance(contract, dict):
            self._conn.close()
            raise ProtocolError("the server's contract is not a map")
        self.contract: dict[str, Any] = contract
        peer_max = contract.get("max_message_bytes")
        if isinstance(peer_max, int) and peer_max > 0:
            self._peer_max = peer_max
        sock.settimeout(timeout)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def _fail(self, error: RLMeshError) -> RLMeshError:
        self._broken = error
        self._conn.close()
        return error

    def request(self, op: int, *args: Any, timeout: float | str | None = "default") -> list[Any]:
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
            if self._closed:
                raise EnvClosedError("this env has been closed")
            if self._broken is not None:
                raise ConnectionLostError(
                    f"the connection to {self.address} is unusable after an earlier error: "
                    f"{self._broken}"
                )
            rid = self._next_id
            self._next_id = rid + 1
            header, buffers, body_len = self._encoder.encode([op, rid, *args])
            if len(header) + body_len > self._peer_max:
                raise MessageTooLargeError(
                    f"request of {len(header) + body_len} bytes exceeds the server's limit of "
                    f"{self._peer_max}; nothing was sent"
                )
            conn = self._conn
            if timeout != "default":
                conn.sock.settimeout(timeout)  # type: ignore[arg-type]
            try:
                conn.send(header, buffers, body_len)
                reply_header, body = conn.recv()
                reply = self._decoder.decode(reply_header, body)
            except TimeoutError:
                limit = self.timeout if timeout == "default" else timeout
                raise self._fail(RLMeshTimeoutError(
                    f"{P.OP_NAMES.get(op, op)} to {self.address} got no reply within {limit}s"
                )) from None
            except TransportError as exc:
                raise self._fail(ConnectionLostError(
                    f"connection to {self.address} lost: {exc}")) from exc
            except OSError as exc:
                raise self._fail(ConnectionLostError(
                    f"connection to {self.address} lost: {exc}")) from exc
            except ProtocolError as exc:
                raise self._fail(exc) from None
            finally:
                if timeout != "default":
                    conn.sock.settimeout(self.timeout)
            if type(reply) is not list or len(reply) < 3 or reply[1] != rid:
                if type(reply) is list and len(reply) == 3 and reply[0] == P.STATUS_ERROR:
                    pass  # a fatal error sent before the server could read our request id
                else:
                    raise self._fail(ProtocolError(f"unexpected reply {reply!r:.200}"))
            if reply[0] == P.STATUS_OK:
                return reply
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
