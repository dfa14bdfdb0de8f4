"""The client side of one connection: handshake, then request/reply with timeouts."""

from __future__ import annotations

import collections
import contextlib
import enum
import os
import ssl
import threading
from collections.abc import Sequence
from typing import Any, Final

from rlmesh import auth, shm, shmlink
from rlmesh import protocol as P
from rlmesh.codec import Decoder, Encoder
from rlmesh.errors import (
    AuthenticationError,
    ConnectionLostError,
    EnvClosedError,
    MessageTooLargeError,
    ProtocolError,
    RLMeshError,
    RLMeshTimeoutError,
    TransportError,
)
from rlmesh.sockets import connect, parse_address
from rlmesh.tls import resolve_client as resolve_tls
from rlmesh.transport import Connection

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 60.0
DEFAULT_SPIN = int(os.environ.get("RLMESH_SPIN", "64"))
"""Non-blocking polls for a reply before blocking (``RLMESH_SPIN``; 0 disables)."""


class Default(enum.Enum):
    """Type of :data:`DEFAULT`."""

    TOKEN = 0


DEFAULT: Final = Default.TOKEN
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
        token: str | bytes | None = None,
        tls: ssl.SSLContext | bool | None = None,
    ) -> None:
        self.address = parse_address(address)
        secret = auth.token_from(token)
        context = resolve_tls(tls, self.address.tls)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._next_id = 0
        self._broken: RLMeshError | None = None
        self._pending: collections.deque[tuple[int, int]] = collections.deque()
        self._early: dict[int, list[Any] | RLMeshError] = {}
        """Replies read ahead of :meth:`collect` (a shared-memory link holds one frame)."""
        self._peer_max = P.DEFAULT_MAX_MESSAGE_BYTES
        self._closed = False
        sock = connect(self.address, connect_timeout, context)
        self._conn = Connection(sock, max_message_bytes)
        self._conn.set_spin(DEFAULT_SPIN)
        self._encoder = Encoder()
        self._decoder = Decoder()
        region = None if self._conn.tls else _offer_region(sock)
        try:
            self._conn.set_timeout(connect_timeout)
            capabilities = []
            if region is not None:
                capabilities = ["shm", "shm-link"] if shmlink.supported() else ["shm"]
            hello: dict[str, Any] = {"rlmesh": P.PROTOCOL_VERSION, "client": P.CLIENT_NAME,
                                     "capabilities": capabilities}
            if region is not None:
                hello["shm"] = {"name": region.name, "size": region.size, "host": shm.host_id()}
            client_nonce = auth.nonce() if secret is not None else b""
            if secret is not None:
                hello["nonce"] = client_nonce
            contract = self.request(P.OP_HELLO, hello, timeout=connect_timeout)[2]
            if not isinstance(contract, dict):
                raise ProtocolError("the server's contract is not a map")
            contract = self._answer_challenge(contract, secret, client_nonce, connect_timeout)
            self._conn.set_timeout(timeout)
        except BaseException:
            self._conn.close()
            if region is not None:
                region.unlink()
                region.close()
            raise
        if region is not None:
            region.unlink()  # both sides have mapped it (or the server declined)
            if contract.get("shm") is True:
                link = contract.get("shm_link") is True
                self._conn.attach_shm(region, "client", link=link)
            else:
                region.close()
        self.contract: dict[str, Any] = contract
        peer_max = contract.get("max_message_bytes")
        if isinstance(peer_max, int) and peer_max > 0:
            self._peer_max = peer_max

    def _answer_challenge(self, reply: dict[str, Any], secret: bytes | None,
                          client_nonce: bytes, timeout: float | None) -> dict[str, Any]:
        """Complete token authentication (see :mod:`rlmesh.auth`); returns the contract."""
        challenge = reply.get("challenge")
        if challenge is None:
            if secret is not None:
                raise AuthenticationError(
                    f"{self.address} does not use a token, so it cannot prove who it is; "
                    "refusing it (unset token= / RLMESH_TOKEN to connect without auth)")
            return reply
        if secret is None:
            raise AuthenticationError(f"{self.address} requires a token (token= or "
                                      "RLMESH_TOKEN)")
        if not isinstance(challenge, bytes):
            raise ProtocolError("malformed authentication challenge")
        proof = auth.proof(secret, b"client", client_nonce, challenge)
        contract = self.request(P.OP_AUTH, {"proof": proof}, timeout=timeout)[2]
        if not isinstance(contract, dict):
            raise ProtocolError("the server's contract is not a map")
        expected = auth.proof(secret, b"server", client_nonce, challenge)
        if not auth.check(expected, contract.get("auth")):
            raise AuthenticationError(f"{self.address} could not prove it holds the token")
        return contract

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def set_timeout(self, timeout: float | None) -> None:
        """Change the bound on each later request (``None``: no limit)."""
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be > 0 or None")
        with self._lock:
            self.timeout = timeout
            if self._broken is None and not self._closed:
                self._conn.set_timeout(timeout)

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

    def _send_locked(self, op: int, args: tuple[Any, ...]) -> int:
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
        if self._conn.link is not None:
            self._read_ahead()
        try:
            # The reply may use shared memory only if no earlier reply is still unread.
            self._conn.send(header, buffers, body_len, not self._pending)
        except (BlockingIOError, TimeoutError, OSError, TransportError) as exc:
            raise self._translate(exc, op, self.timeout) from None
        return rid

    def _read_ahead(self) -> None:
        """Read every pending reply now, so the link's slots are free for the next request."""
        for rid, op in self._pending:
            if rid not in self._early:
                try:
                    self._early[rid] = self._recv_locked(op, rid, self.timeout)
                except RLMeshError as exc:
                    self._early[rid] = exc
        if self._broken is not None:
            raise self._unusable()

    def _recv_locked(self, op: int, rid: int, limit: float | None) -> list[Any]:
        try:
            reply_header, body = self._conn.recv()
            reply = self._decoder.decode(reply_header, body)
        except (BlockingIOError, TimeoutError, OSError, TransportError, ProtocolError) as exc:
            raise self._translate(exc, op, limit) from None
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

    def _translate(self, exc: BaseException, op: int, limit: float | None) -> RLMeshError:
        """Turn a send/receive failure into the typed error, breaking the channel."""
        if isinstance(exc, (BlockingIOError, TimeoutError)):
            return self._fail(RLMeshTimeoutError(
                f"{P.OP_NAMES.get(op, op)} to {self.address} got no reply within {limit}s"))
        if isinstance(exc, ProtocolError):
            return self._fail(exc)
        return self._fail(ConnectionLostError(f"connection to {self.address} lost: {exc}"))

    def request(self, op: int, *args: Any, timeout: float | Default | None = DEFAULT
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
            if self._pending:
                raise RuntimeError("collect() the pipelined replies before request()")
            if timeout is DEFAULT:
                return self._recv_locked(op, self._send_locked(op, args), self.timeout)
            self._conn.set_timeout(timeout)
            try:
                return self._recv_locked(op, self._send_locked(op, args), timeout)
            finally:
                if self._broken is None:
                    self._conn.set_timeout(self.timeout)

    def submit(self, op: int, *args: Any) -> int:
        """Send a request without waiting; :meth:`collect` its reply later, in order.

        Pipelining lets one thread keep many endpoints busy at once.

        Returns:
            The request id.
        """
        with self._lock:
            rid = self._send_locked(op, args)
            self._pending.append((rid, op))
            return rid

    def collect(self) -> list[Any]:
        """Wait for the reply to the oldest :meth:`submit`-ted request.

        Raises:
            RuntimeError: If nothing is pending.
            RLMeshError: As :meth:`request`.
        """
        with self._lock:
            if not self._pending:
                raise RuntimeError("no request is pending")
            rid, op = self._pending.popleft()
            early = self._early.pop(rid, None)
            if isinstance(early, RLMeshError):
                raise early
            if early is not None:
                return early
            return self._recv_locked(op, rid, self.timeout)

    def close(self, timeout: float = 1.0) -> None:
        """Tell the server goodbye (best effort, bounded) and close the socket. Idempotent."""
        with self._lock:
            if self._closed:
                return
            broken = self._broken
            pending = bool(self._pending)
        if broken is None and not pending:
            with contextlib.suppress(RLMeshError):
                self.request(P.OP_CLOSE, timeout=timeout)
        with self._lock:
            self._closed = True
            self._conn.close()

    def abandon(self) -> None:
        """Close the socket without a goodbye (for finalizers)."""
        self._closed = True
        self._conn.close()


def probe(address: str, timeout: float = 5.0,
          tls: ssl.SSLContext | bool | None = None) -> dict[str, Any]:
    """Ask an endpoint to describe itself without opening a session (a health check).

    The server builds no env and holds nothing for this; a busy single-instance endpoint
    answers too (with ``"busy": True``).

    Returns:
        The endpoint's contract (spaces as schemas, ``kind``, ``num_envs``, ``server``...).

    Raises:
        ConnectFailedError: Nothing accepts connections at ``address``.
        RLMeshError: The endpoint answered with an error, or not in time.
    """
    parsed = parse_address(address)
    conn = Connection(connect(parsed, timeout, resolve_tls(tls, parsed.tls)),
                      P.DEFAULT_MAX_MESSAGE_BYTES)
    try:
        conn.set_timeout(timeout)
        encoder, decoder = Encoder(), Decoder()
        hello = {"rlmesh": P.PROTOCOL_VERSION, "client": P.CLIENT_NAME, "capabilities": [],
                 "probe": True}
        conn.send(*encoder.encode([P.OP_HELLO, 0, hello]))
        try:
            reply = decoder.decode(*conn.recv())
        except (BlockingIOError, TimeoutError):
            raise RLMeshTimeoutError(f"{parsed} did not answer within {timeout}s") from None
        except (OSError, TransportError) as exc:
            raise ConnectionLostError(f"{parsed} hung up: {exc}") from exc
        if type(reply) is not list or len(reply) < 3:
            raise ProtocolError(f"unexpected reply {reply!r:.200}")
        if reply[0] != P.STATUS_OK:
            raise P.error_from_map(reply[2])
        if not isinstance(reply[2], dict):
            raise ProtocolError("the server's contract is not a map")
        return reply[2]
    finally:
        conn.close()


def _offer_region(sock: Any) -> shm.ShmRegion | None:
    """A fresh shared-memory region to offer the server, when it may be on this host."""
    if not (shm.enabled() and shm.same_host_socket(sock)):
        return None
    try:
        return shm.ShmRegion.create()
    except (OSError, ValueError):
        return None


def gather(channels: Sequence[Channel], indices: Sequence[int]) -> list[list[Any]]:
    """Collect one pipelined reply per listed channel; raise the first error after all."""
    replies: list[list[Any]] = []
    first_error: RLMeshError | None = None
    for i in indices:
        try:
            replies.append(channels[i].collect())
        except RLMeshError as exc:
            replies.append([])
            if first_error is None:
                first_error = exc
                if hasattr(exc, "add_note"):  # Python 3.11+
                    exc.add_note(f"raised by endpoint {i} ({channels[i].address})")
    if first_error is not None:
        raise first_error
    return replies
