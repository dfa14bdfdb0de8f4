"""One connection's exchanges: request ids, sending, receiving, and what breaks them.

:class:`Exchange` is the bottom of a client channel. It opens the connection (the handshake,
the contract's fixed frames and slot steps), sends a request under a fresh id, reads its
reply, and turns every failure into the typed error that leaves the connection closed: a
timeout, a lost connection, a protocol error, an interruption. Resuming a broken session is
:class:`rlmesh.client.resuming.Resumable`'s; the public calls and the step's shortest paths
are :class:`rlmesh.client.channel.Channel`'s.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from rlmesh import protocol as P
from rlmesh.client import handshake
from rlmesh.client.options import ConnectOptions, limit_seconds
from rlmesh.errors import (
    ConnectionLostError,
    EnvClosedError,
    MessageTooLargeError,
    ProtocolError,
    RLMeshError,
    RLMeshTimeoutError,
    TransportError,
)
from rlmesh.protocol import auth
from rlmesh.tls import resolve_client as resolve_tls
from rlmesh.transport import fastframes
from rlmesh.transport.fastframes import ClientFrames
from rlmesh.transport.fastslots import ClientSteps
from rlmesh.transport.shmlink import STEP_FRAME
from rlmesh.transport.sockets import parse_address
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fixed import contract_frames
from rlmesh.wire.slots import SlotSteps

__all__ = ["Exchange"]


class Exchange:
    """The state and the I/O of one connection (:class:`rlmesh.client.channel.Channel`).

    Args:
        address: Endpoint address string.
        options: How to connect; default ``ConnectOptions()``.
        resume: Resume the session after a broken connection when the server offers it.
        wait: Retry a refused connection until ``connect_timeout``.
        **changes: Fields of ``options`` to change.
    """

    def __init__(self, address: str, options: ConnectOptions | None = None, *,
                 resume: bool = True, wait: bool = True, **changes: Any) -> None:
        options = options or ConnectOptions()
        if changes:
            options = options.replace(**changes)
        self.options = options
        self.address = parse_address(address)
        self._secret = auth.token_from(options.token)
        self._tls = resolve_tls(options.tls, self.address.tls)
        self._connect_timeout = options.connect_timeout
        self._max_message_bytes = options.max_message_bytes
        self.timeout = options.timeout
        self._lock = threading.Lock()
        self._next_id = 1
        self._broken: RLMeshError | None = None
        self._pending: collections.deque[tuple[int, int]] = collections.deque()
        self._early: dict[int, list[Any] | RLMeshError] = {}
        """Replies read ahead of :meth:`collect` (a shared-memory link holds one frame)."""
        self._posted = 0
        """The id of the last slot step submitted (its reply is read from the reply slot)."""
        self._sent: tuple[int, int, tuple[Any, ...]] | None = None
        """``(request_id, op, args)`` of the last request sent, for a resume to resend."""
        self._dropped = False
        """Whether the connection broke (rather than a timeout or a protocol error)."""
        self._window_end: float | None = None
        """When the server gives up the session parked after the break (while resuming)."""
        self._retimed = False
        """Whether a resume set the connection's timeout to a call's remaining time."""
        self._peer_max = P.DEFAULT_MAX_MESSAGE_BYTES
        self._closed = False
        self._encoder = Encoder()
        self._decoder = Decoder()
        opened = self._open(options.connect_timeout, wait=wait)
        self._conn = opened.conn
        self._conn.set_timeout(options.timeout)
        contract = opened.contract
        self.contract: dict[str, Any] = contract
        self._frames = contract_frames(contract)
        """The contract's fixed-shape step frames (``rlmesh.wire.fixed``), if it has them."""
        slot_steps = handshake.slot_steps(self._conn, contract, self._frames)
        self._slots: SlotSteps | None = None if slot_steps is None else slot_steps[0]
        self._fast: ClientSteps | None = None if slot_steps is None else slot_steps[1]
        """The slot-step layout (``rlmesh.wire.slots``), if the link agreed on slot steps,
        and its compiled step (``rlmesh.transport.fastslots``), if this process has one."""
        offer = contract.get("resume")
        self._resume: dict[str, Any] | None = offer if resume and isinstance(offer, dict) \
            and isinstance(offer.get("key"), bytes) else None
        peer_max = contract.get("max_message_bytes")
        if isinstance(peer_max, int) and peer_max > 0:
            self._peer_max = peer_max
        self._fast_frames: ClientFrames | None = None if slot_steps is not None else \
            fastframes.client_frames(self._conn, self._frames, self._peer_max)
        """The compiled fixed-frame step over a plain socket (``rlmesh.transport.fastframes``)."""

    def _open(self, connect_timeout: float | None, extra: dict[str, Any] | None = None,
              wait: bool = False) -> handshake.Opened:
        return handshake.open_connection(
            self.address, connect_timeout=connect_timeout,
            max_message_bytes=self._max_message_bytes, secret=self._secret, tls=self._tls,
            spin=self.options.spin, same_host=self.options.same_host, extra=extra, wait=wait)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def set_timeout(self, timeout: float | None) -> None:
        """Change the bound on each later request (``None``: no limit)."""
        timeout = limit_seconds("timeout", timeout)
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

    def _send_locked(self, op: int, args: tuple[Any, ...], limit: float | None) -> int:
        if self._broken is not None or self._closed:
            self._resume_before_send(limit)
        rid = self._next_id
        self._next_id = rid + 1
        frames = self._frames
        fixed = frames.encode_request(rid, args[0]) if (
            frames is not None and op == P.OP_STEP and len(args) == 1) else None
        buffers: list[Any]
        if fixed is not None:
            header, buffers, body_len = fixed, [], 0
        else:
            header, buffers, body_len = self._encoder.encode([op, rid, *args])
        if len(header) + body_len > self._peer_max:
            raise MessageTooLargeError(
                f"request of {len(header) + body_len} bytes exceeds the server's limit of "
                f"{self._peer_max}; nothing was sent"
            )
        if self._pending and self._conn.single_slot:
            self._read_ahead()
        if self._resume is not None:
            self._sent = (rid, op, args)
        # The reply may use shared memory only if no earlier reply is still unread.
        self._send_frame(op, header, buffers, body_len, not self._pending)
        return rid

    def _send_frame(self, op: int, header: bytes, buffers: list[Any], body_len: int,
                    flag: bool) -> None:
        """Send one request frame; a failure or an interruption breaks the channel."""
        try:
            self._conn.send(header, buffers, body_len, flag)
        except (BlockingIOError, TimeoutError, OSError, TransportError) as exc:
            raise self._translate(exc, op, self.timeout) from None
        except BaseException as exc:
            self._interrupted(exc, op)
            raise

    def _resume_before_send(self, limit: float | None) -> None:
        """Send on a broken or closed channel: resume its session (a subclass's), or raise.

        Raises:
            ConnectionLostError: The channel is unusable (``EnvClosedError`` if closed).
        """
        raise self._unusable()

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
        if self._broken is not None or self._closed:  # (nothing to read there: abandoned)
            raise self._unusable()
        try:
            reply_header, body = self._conn.recv()
        except (BlockingIOError, TimeoutError, OSError, TransportError, ProtocolError) as exc:
            raise self._translate(exc, op, limit) from None
        except BaseException as exc:
            self._interrupted(exc, op)
            raise
        if reply_header is STEP_FRAME:  # (the reply to a slot step submitted: Channel.submit)
            return self._slot_reply(op, rid, limit)
        frames = self._frames
        reply = frames.decode_reply(reply_header, body) if frames is not None else None
        if reply is not None and reply[1] == rid:
            return reply
        return self._reply_locked(op, rid, limit, reply_header, body)

    def _slot_reply(self, op: int, rid: int, limit: float | None) -> list[Any]:
        """The slot step reply to ``rid`` the link just announced (locked)."""
        try:
            if self._slots is None:
                raise ProtocolError("a slot step reply on a connection without slot steps")
            return self._slots.read_reply(rid)
        except ProtocolError as exc:
            raise self._translate(exc, op, limit) from None

    def _reply_locked(self, op: int, rid: int, limit: float | None,
                      reply_header: bytes | memoryview, body: Any) -> list[Any]:
        """Decode a reply with the general decoder; return it, or raise what it says."""
        try:
            reply = self._decoder.decode(reply_header, body)
        except ProtocolError as exc:
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

    def _interrupted(self, exc: BaseException, op: int) -> None:
        """A call stopped mid-exchange by ``exc`` (Ctrl-C, a signal handler's exception).

        What of the request went out, and what of its reply came in, is unknown, so the
        connection is closed: the next call raises ``ConnectionLostError`` instead of
        reading a stale or half-read reply. With a resume window the next call resumes the
        session instead (the interrupted request was applied at most once).
        """
        if self._broken is not None or self._closed:
            self._conn.close()  # (idempotent: abandon() from another thread leaves it to us)
            return
        self._fail(ConnectionLostError(
            f"{P.OP_NAMES.get(op, op)} to {self.address} was interrupted "
            f"({type(exc).__name__}) while its request or reply was in flight; "
            "the connection was closed"))
        if self._resume is not None:  # (a resume needs no other request pending: checked then)
            self._dropped = True
            self._window_end = time.monotonic() + float(self._resume.get("window") or 0)

    def _stopped(self, exc: BaseException, op: int) -> None:
        """A locked call ended by ``exc``: an interruption (not an ``Exception``) breaks it.

        The I/O calls catch what ends them mid-exchange themselves; this also covers the
        moments between them (a signal handler runs between any two bytecodes).
        """
        if not isinstance(exc, Exception):
            self._interrupted(exc, op)

    def _translate(self, exc: BaseException, op: int, limit: float | None) -> RLMeshError:
        """Turn a send/receive failure into the typed error, breaking the channel."""
        if isinstance(exc, (BlockingIOError, TimeoutError)):
            return self._fail(RLMeshTimeoutError(
                f"{P.OP_NAMES.get(op, op)} to {self.address} got no reply within {limit}s"))
        if isinstance(exc, ProtocolError):
            return self._fail(exc)
        self._dropped = True
        return self._fail(ConnectionLostError(f"connection to {self.address} lost: {exc}"))
